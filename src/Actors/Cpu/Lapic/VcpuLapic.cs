using System.Collections.Concurrent;
using Akka.Actor;
using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Messages;
using static Actorvisor.Kernel.Messages.InterruptProtocol;

namespace Actorvisor.Actors.Cpu.Lapic;

/// <summary>
/// One vCPU's LAPIC as that vCPU's thread owns it. The <see cref="Lapic"/> model is touched only by the run
/// thread: it reads and writes the register page directly (no message per EOI or TPR write), takes the
/// interrupt acknowledge synchronously, and keeps TPR and CR8 one register. Everything that comes from
/// elsewhere (APIC-bus messages, LINT levels, timer expiries) is posted to <see cref="Post"/> by the
/// <see cref="LapicActor"/> or the timer, queued, and applied by the run thread before it next looks for an
/// interrupt; each post wakes the thread, so a halted CPU gets up. See docs/ARCHITECTURE.md, "Interrupts".
/// </summary>
public sealed class VcpuLapic : IInterruptSource, ILapicOutput, ILocalMmio, IDisposable
{
    private sealed record TimerExpired(long Generation);

    private readonly ConcurrentQueue<object> _inbox = new();
    private readonly IActorRef _apicBus;
    private readonly IActorRef _eoiTarget;
    private IActorRef? _pic;
    private SoftwareCpu? _cpu;
    private ActorBusPlatform? _platform;
    private Action _wake = () => { };
    private ulong _lastCr8;
    /// <summary>INTR as last seen on LINT0; used directly when the LAPIC is hardware-disabled.</summary>
    private bool _lint0;
    private volatile ApicAddress _address;
    /// <summary>An INIT arrived and is applied to the CPU at the next stop of its run loop.</summary>
    private bool _initPending;
    /// <summary>The vector of a STARTUP IPI waiting to be applied; -1 if none.</summary>
    private int _sipiVector = -1;
    /// <summary>Traced interrupts' contexts and this vCPU's interrupt counts (LapicTelemetry.cs).</summary>
    private readonly LapicTelemetry _telemetry;

    public Lapic Model { get; }
    public int VcpuId { get; }
    /// <summary>How this LAPIC is addressed (for the APIC bus); any thread.</summary>
    public ApicAddress Address => _address;
    public long ExtIntAcknowledges { get; private set; }
    /// <summary>ExtINTs the 8259 had already withdrawn when the INTA reached it (see InterruptAcknowledge.NoRequest).</summary>
    public long WithdrawnExtInts { get; private set; }
    /// <summary>INITs applied to the CPU.</summary>
    public long Inits { get; private set; }
    /// <summary>STARTUP IPIs that started the CPU, and those ignored because it was not waiting for one.</summary>
    public long StartUps { get; private set; }
    public long IgnoredStartUps { get; private set; }

    /// <param name="apicBus">Where IPIs go (the <see cref="ApicBusActor"/>).</param>
    /// <param name="eoiTarget">Where EOIs of level-triggered vectors go (the IOAPIC).</param>
    /// <param name="pic">The 8259 pair for ExtINT acknowledges (the BSP's LINT0 is wired to it); null if none.</param>
    /// <param name="apicId">The APIC ID the topology gives this vCPU; the vCPU id when null.</param>
    public VcpuLapic(int vcpuId, TimeProvider time, ulong busHz, IActorRef apicBus, IActorRef eoiTarget, IActorRef? pic,
        byte? apicId = null)
    {
        VcpuId = vcpuId;
        _telemetry = new LapicTelemetry(vcpuId);
        _apicBus = apicBus;
        _eoiTarget = eoiTarget;
        _pic = pic;
        Model = new Lapic(vcpuId, this, time, busHz, g => Post(new TimerExpired(g)), apicId);
        _address = Snapshot();
    }

    /// <summary>
    /// Wires LINT0's INTA path to the 8259 pair, for a VM that creates the PIC after this LAPIC (the PIC's
    /// INTR goes to this LAPIC's actor). Before the vCPU starts.
    /// </summary>
    public void ConnectPic(IActorRef pic) => _pic = pic;

    /// <summary>Called by the vCPU actor with its CPU, bus platform and wake-up (run thread not started yet).</summary>
    public void Attach(SoftwareCpu cpu, ActorBusPlatform platform, Action wake)
    {
        _cpu = cpu;
        _platform = platform;
        _wake = wake;
        _telemetry.Metrics = platform.Telemetry.Metrics;
        _lastCr8 = cpu.Cr8;
        _address = Snapshot();
    }

    /// <summary>Queues an input for the run thread and wakes it. Any thread.</summary>
    public void Post(object input)
    {
        _inbox.Enqueue(input);
        Volatile.Write(ref _posted, 1);
        _cpu?.NoteInterruptChange();
        _wake();
    }

    /// <summary>1 when <see cref="Post"/> queued something since <see cref="Service"/> last looked: cheaper to ask than the queue.</summary>
    private int _posted;

    /// <summary>Applies queued inputs. Run thread only.</summary>
    public void Service()
    {
        // Cleared with a full fence before the queue is read: a post that lands after the drain sets it again.
        Interlocked.Exchange(ref _posted, 0);
        while (_inbox.TryDequeue(out var m))
        {
            switch (m)
            {
                case LapicDeliver { Mode: DeliveryMode.Init, Level: false }:
                    break; // INIT level de-assert: a no-op since the Pentium 4 (SDM Vol. 3A, 11.6.1)
                case LapicDeliver d:
                    Model.Accept(d.Mode, d.Vector, d.Trigger);
                    if (d.Trace != default) _telemetry.Accepted(d, Model);
                    else if (d.Raised != 0) _telemetry.Stamped(d, Model);
                    break;
                case LocalInterrupt l when l.Lint is 0 or 1:
                    if (l.Lint == 0) _lint0 = l.Level;
                    if (l.Trace != default) _telemetry.LintRaised(l.Trace);
                    else if (l.Raised != 0) _telemetry.LintStamped(l.Raised);
                    else if (l.Lint == 0 && !l.Level) _telemetry.LintLowered();
                    if (HardwareEnabled) Model.SetLint(l.Lint, l.Level);
                    else if (l.Lint == 1 && l.Level) Nmi(); // a disabled LAPIC passes LINT1 through as NMI
                    else if (l.Lint == 0) Model.SetLint0Level(l.Level);
                    break;
                case TimerExpired t:
                    Model.OnTimerExpired(t.Generation);
                    break;
            }
        }
    }

    /// <summary>
    /// What the run thread does between two runs of the CPU: applies the inbox, then an INIT and a STARTUP that
    /// arrived (in that order). INIT is applied here, never inside a run, so it cannot reset the CPU under a
    /// half-executed instruction (a self-INIT through the ICR); receiving it kicks the CPU out of its run loop.
    /// </summary>
    public void ServiceBetweenRuns()
    {
        Service();
        if (_cpu is null) return;
        _cpu.NoteInterruptChange();
        if (_initPending)
        {
            _initPending = false;
            Inits++;
            Model.InitReset();
            _telemetry.ForgetStamps(); // IRR is clear: no pending vector's raise time may meet a later take
            _cpu.Init();
            _lastCr8 = _cpu.Cr8;
            _lint0 = false;
            _address = Snapshot();
        }
        if (_sipiVector >= 0)
        {
            var v = (byte)_sipiVector;
            _sipiVector = -1;
            if (_cpu.StartUp(v)) StartUps++;
            else IgnoredStartUps++;
        }
    }

    /// <summary>IA32_APIC_BASE.EN: when clear, the LAPIC is out of the way and LINT0 is the CPU's INTR pin.</summary>
    private bool HardwareEnabled => _cpu is null || (_cpu.ApicBase & ApicBaseBits.Enable) != 0;

    private ulong BaseAddress => (_cpu?.ApicBase ?? ApicBaseBits.DefaultBase) & ~0xFFFUL & ((1UL << 52) - 1);

    // ---- TPR is CR8 (SDM Vol. 3A, 11.8.6: CR8[3:0] = TPR[7:4]) ----

    private void SyncFromCr8()
    {
        var cr8 = _cpu!.Cr8;
        if (cr8 == _lastCr8) return;
        _lastCr8 = cr8;
        Model.Write(LapicRegisters.Tpr, 4, (uint)cr8 << 4);
    }

    private void SyncToCr8()
    {
        _cpu!.Cr8 = Model.Tpr >> 4;
        _lastCr8 = _cpu.Cr8;
    }

    // ---- IInterruptSource (run thread) ----

    /// <summary>Every input that can make an interrupt deliverable tells the CPU (<see cref="SoftwareCpu.NoteInterruptChange"/>):
    /// posts from any thread, writes to the register page, the run thread's INIT and STARTUP; the CPU itself notes its
    /// CR8 and MSR writes.</summary>
    public bool SignalsChanges => true;

    public bool HasPendingInterrupt
    {
        get
        {
            if (Volatile.Read(ref _posted) != 0) Service();
            if (!HardwareEnabled) return _lint0 && _pic is not null;
            SyncFromCr8();
            return Model.HasInterrupt;
        }
    }

    public int AcknowledgeInterrupt()
    {
        if (!HardwareEnabled) return _lint0 && _pic is not null ? PicAcknowledge() : -1;
        SyncFromCr8();
        if (Model.ExtIntPending)
        {
            Model.ExtIntAcknowledged();
            return _pic is null ? -1 : PicAcknowledge();
        }
        var v = Model.Acknowledge();
        if (v >= 0) _telemetry.Taken(v, extInt: false);
        return v;
    }

    /// <summary>The 8259's INTA, waited for like a port read; it also tells us whether INTR stays high.</summary>
    private int PicAcknowledge()
    {
        ExtIntAcknowledges++;
        var r = _platform!.ReplyTarget.Request(_pic!, InterruptAcknowledge.Instance, _platform.ReadTimeout, _platform.Cancel,
            () => $"vcpu {VcpuId}: 8259 interrupt acknowledge");
        if ((r & InterruptAcknowledge.NoRequest) != 0)
        {
            // INTR had dropped before the INTA (its LocalInterrupt is still in flight): nothing to take.
            WithdrawnExtInts++;
            _lint0 = false;
            Model.SetLint0Level(false);
            return -1;
        }
        var still = (r & InterruptAcknowledge.IntrStillAsserted) != 0;
        _lint0 = still;
        Model.SetLint0Level(still);
        _telemetry.Taken((int)(r & 0xFF), extInt: true);
        return (int)(r & 0xFF);
    }

    // ---- the register page, accessed by the run thread without a message ----

    public bool TryMmioRead(ulong address, int size, out ulong value)
    {
        value = 0;
        if (_cpu is null || !HardwareEnabled) return false;
        var b = BaseAddress;
        if (address < b || address + (ulong)size > b + LapicRegisters.WindowSize) return false;
        SyncFromCr8();
        value = Model.Read(address - b, size);
        _telemetry.Metrics.Exits[(int)Actorvisor.Kernel.Telemetry.ExitReason.Lapic]++;
        return true;
    }

    public bool TryMmioWrite(ulong address, int size, ulong value)
    {
        if (_cpu is null || !HardwareEnabled) return false;
        var b = BaseAddress;
        if (address < b || address + (ulong)size > b + LapicRegisters.WindowSize) return false;
        SyncFromCr8();
        var offset = address - b;
        _telemetry.Metrics.Exits[(int)Actorvisor.Kernel.Telemetry.ExitReason.Lapic]++;
        var eoiVector = offset == LapicRegisters.Eoi && _telemetry.Tracing ? LapicTelemetry.HighestInService(Model) : -1;
        Model.Write(offset, size, (uint)value);
        if (eoiVector >= 0) _telemetry.EndOfInterrupt(eoiVector);
        if (offset == LapicRegisters.Tpr) SyncToCr8();
        if (offset is LapicRegisters.Id or LapicRegisters.Ldr or LapicRegisters.Dfr or LapicRegisters.Svr)
            _address = Snapshot();
        // EOI, TPR, SVR, an LVT or a self-IPI can each make a vector deliverable.
        _cpu.NoteInterruptChange();
        return true;
    }

    private ApicAddress Snapshot() =>
        new(VcpuId, Model.ApicId, Model.LogicalId, Model.FlatModel, Model.SoftwareEnabled);

    /// <summary>Firmware hand-over for the BSP (virtual wire mode); before the run thread starts.</summary>
    public void EnterVirtualWireMode()
    {
        Model.EnterVirtualWireMode();
        _address = Snapshot();
    }

    // ---- ILapicOutput (run thread) ----

    public void SendIpi(LapicDeliver message) => _apicBus.Tell(message, ActorRefs.NoSender);
    public void BroadcastEoi(byte vector) => _eoiTarget.Tell(new EndOfInterrupt(vector), ActorRefs.NoSender);
    /// <summary>NMIs are not recognised in the wait-for-SIPI state.</summary>
    public void Nmi()
    {
        if (_cpu is { WaitingForSipi: false } cpu) cpu.RequestNmi();
    }

    public void Init()
    {
        _initPending = true;
        _sipiVector = -1; // a SIPI before this INIT is void
        _cpu?.Kick();
    }

    public void StartUp(byte vector)
    {
        // A SIPI counts only for a CPU in (or entering) wait-for-SIPI, and only the first (SDM Vol. 3A, 10.4.4.1:
        // the second SIPI of INIT-SIPI-SIPI is ignored by a processor the first one started).
        if ((_initPending || _cpu is { WaitingForSipi: true }) && _sipiVector < 0) _sipiVector = vector;
        else IgnoredStartUps++;
        _cpu?.Kick();
    }

    public void Dispose() => Model.Dispose();
}
