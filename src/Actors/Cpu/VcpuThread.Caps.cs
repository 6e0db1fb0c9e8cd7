using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Telemetry;
using Iced.Intel;

namespace Actorvisor.Actors.Cpu;

/// <summary>
/// The run thread's side of bhyve's capabilities (<see cref="VcpuCapabilities"/>): getcap/setcap are answered
/// between runs, and the settable ones change how <see cref="Step"/> runs the CPU.
/// </summary>
internal sealed partial class VcpuThread
{
    private readonly VcpuCapState _caps = new();

    private VcpuProtocol.CapValues Caps()
    {
        var values = new Dictionary<string, bool?>(StringComparer.Ordinal);
        foreach (var c in VcpuCapabilities.All) values[c.Name] = Value(c.Name);
        return new VcpuProtocol.CapValues(_cpu.Id, values);
    }

    /// <summary>A capability's value on this vCPU; null when it is not available.</summary>
    private bool? Value(string name) => name switch
    {
        "hlt_exit" => _caps.HltExit,
        "mtrap_exit" => _caps.MtrapExit,
        "pause_exit" => _caps.PauseExit,
        "mask_hwintr" => _caps.MaskHwintr,
        "unrestricted_guest" => true,
        "rdtscp" => _cpu.Model.HasRdtscp,
        _ => null,
    };

    private object SetCap(VcpuProtocol.SetCap m)
    {
        var cap = VcpuCapabilities.Find(m.Name);
        string? refusal = cap switch
        {
            null => $"unknown capability '{m.Name}'; known: {VcpuCapabilities.Names}",
            { Support: VcpuCapabilities.Support.Unsupported } => $"capability '{m.Name}' is not available: {cap.Meaning}",
            { Support: VcpuCapabilities.Support.Fixed } when Value(m.Name) != m.On => $"capability '{m.Name}' cannot be changed: {cap.Meaning}",
            _ when m.Name == "hlt_exit" && !m.On && _scheduler is not null =>
                "hlt_exit cannot be turned off in a deterministic run: its clock moves on only when every vCPU has halted or run its share",
            _ => null,
        };
        if (refusal is not null) return new Kernel.Messages.LifecycleProtocol.NotAllowed(refusal);
        switch (m.Name)
        {
            case "hlt_exit": _caps.HltExit = m.On; break;
            case "mtrap_exit": _caps.MtrapExit = m.On; break;
            case "pause_exit": _caps.PauseExit = m.On; break;
            case "mask_hwintr":
                _caps.MaskHwintr = m.On;
                if (m.On && _cpu.Interrupts is not MaskedInterrupts) _cpu.Interrupts = new MaskedInterrupts(_cpu.Interrupts);
                else if (!m.On && _cpu.Interrupts is MaskedInterrupts masked) _cpu.Interrupts = masked.Inner;
                break;
        }
        return new VcpuProtocol.CapSet(_cpu.Id, m.Name, m.On);
    }

    /// <summary>
    /// mtrap_exit / pause_exit: one instruction, then back to the run thread. The instruction at CS:RIP is looked
    /// at first, so a PAUSE that then retires is counted as a pause exit. An event delivered before it (an
    /// interrupt, a fault) moves RIP elsewhere, which the check after the run tells apart.
    /// </summary>
    private CpuExitReason RunOneInstruction(long budget)
    {
        var metrics = _platform.Telemetry.Metrics;
        var before = _cpu.InstructionCount;
        var rip = _cpu.Rip;
        var cs = _cpu.Segs[Seg.CS].Selector;
        var pauseLength = _caps.PauseExit ? PauseLengthAt(rip) : 0;
        var exit = _cpu.Run(Math.Min(budget, 1));
        var retired = _cpu.InstructionCount - before;
        if (retired > 0)
        {
            if (_caps.MtrapExit) metrics.Exits[(int)ExitReason.Mtrap] += retired;
            if (pauseLength > 0 && _cpu.Rip == ((rip + (ulong)pauseLength) & IpMask()) && _cpu.Segs[Seg.CS].Selector == cs)
                metrics.Exits[(int)ExitReason.Pause]++;
        }
        return exit;
    }

    private ulong IpMask() => _cpu.Bitness switch { 64 => ulong.MaxValue, 32 => 0xFFFF_FFFF, _ => 0xFFFF };

    /// <summary>The length of the PAUSE at CS:RIP (F3 90, perhaps after other prefixes); 0 when it is something else.</summary>
    private int PauseLengthAt(ulong rip)
    {
        // Prefixes, F3, 90: a PAUSE decodes from its first bytes alone, and reading no further keeps clear of
        // whatever follows the instruction.
        Span<byte> bytes = stackalloc byte[4];
        var n = 0;
        var linear = _cpu.Is64 ? rip : _cpu.Segs[Seg.CS].Base + rip;
        try
        {
            // Byte by byte: the instruction may end just before a page that is not mapped.
            for (; n < bytes.Length; n++)
                bytes[n] = (byte)_cpu.ReadLinear((linear + (ulong)n) & (_cpu.Is64 ? ulong.MaxValue : 0xFFFF_FFFF), 1);
        }
        catch (CpuFault)
        {
            // What could not be read is not PAUSE's; the run delivers the fault if the fetch needs those bytes.
        }
        if (n == 0) return 0;
        var decoder = Decoder.Create(_cpu.Bitness, new ByteArrayCodeReader(bytes[..n].ToArray()));
        decoder.Decode(out var instruction);
        return instruction.Mnemonic == Mnemonic.Pause ? instruction.Length : 0;
    }

    /// <summary>hlt_exit off: the halt is no exit; the thread keeps polling the CPU for its wake-up.</summary>
    private StepOutcome PollHalted()
    {
        Thread.Yield();
        return StepOutcome.Ran;
    }

    /// <summary>This vCPU's exits by reason (the non-zero ones), for `stats`.</summary>
    private Dictionary<string, long> ExitCounts()
    {
        var exits = new Dictionary<string, long>(StringComparer.Ordinal);
        var m = _platform.Telemetry.Metrics;
        for (var r = 0; r < VcpuMetrics.ExitReasonCount; r++)
            if (m.Exits[r] != 0) exits[VmMeters.ExitName((ExitReason)r)] = m.Exits[r];
        return exits;
    }

    private Dictionary<string, (long Reads, long Writes)> AccessCounts()
    {
        var accesses = new Dictionary<string, (long Reads, long Writes)>(StringComparer.Ordinal);
        foreach (var d in _platform.Telemetry.Metrics.Devices)
        {
            var (r, w) = accesses.GetValueOrDefault(d.Device);
            accesses[d.Device] = (r + d.Reads, w + d.Writes);
        }
        return accesses;
    }
}
