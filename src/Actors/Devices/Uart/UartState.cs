namespace Actorvisor.Actors.Devices.Uart;

/// <summary>
/// The register state of a <see cref="Uart"/>: values only, no handles (the output sink and the interrupt
/// line are wiring, given again on restore). <see cref="ReceiveFifo"/> holds the unread bytes, oldest first.
/// </summary>
public sealed record UartState(
    ushort Divisor, byte Ier, byte Lcr, byte Mcr, byte Scr, bool FifoEnabled, byte RxTrigger,
    byte LineErrors, byte MsrDeltas, byte ModemInputs, bool ThrInterrupt, byte LastRbr, byte[] ReceiveFifo)
{
    /// <summary>The state of a UART just after power-on.</summary>
    public static UartState PowerOn => new Uart().Save();

    public bool Equals(UartState? other) =>
        other is not null &&
        (Divisor, Ier, Lcr, Mcr, Scr, FifoEnabled, RxTrigger, LineErrors, MsrDeltas, ModemInputs, ThrInterrupt, LastRbr) ==
        (other.Divisor, other.Ier, other.Lcr, other.Mcr, other.Scr, other.FifoEnabled, other.RxTrigger, other.LineErrors,
         other.MsrDeltas, other.ModemInputs, other.ThrInterrupt, other.LastRbr) &&
        ReceiveFifo.AsSpan().SequenceEqual(other.ReceiveFifo);

    public override int GetHashCode() => HashCode.Combine(Divisor, Ier, Lcr, Mcr, Scr, ReceiveFifo.Length);
}
