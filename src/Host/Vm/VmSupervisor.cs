using Akka.Actor;
using Actorvisor.Actors.Cpu;
using Actorvisor.Actors.Cpu.Deterministic;
using Actorvisor.Actors.Devices.AcpiPm;
using Actorvisor.Actors.Devices.DebugExit;
using Actorvisor.Actors.Devices.Hpet;
using Actorvisor.Actors.Cpu.Lapic;
using Actorvisor.Actors.Devices.IoApic;
using Actorvisor.Actors.Devices.IsaIrq;
using Actorvisor.Actors.Devices.Pic;
using Actorvisor.Actors.Devices.I8042;
using Actorvisor.Actors.Devices.Pit;
using Actorvisor.Actors.Devices.ResetControl;
using Actorvisor.Actors.Devices.Rtc;
using Actorvisor.Actors.Devices.Uart;
using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Boot;
using Actorvisor.Kernel.Bus;
using Actorvisor.Kernel.Memory;
using Actorvisor.Kernel.Messages;
using Actorvisor.Kernel.Telemetry;
using Actorvisor.Kernel.Time;

namespace Actorvisor.Host.Vm;

/// <summary>
/// One VM: it allocates guest RAM, loads the kernel, creates the device actors and the vCPUs, puts the
/// devices on the bus and starts the vCPUs. It turns what the vCPUs report into the VM's end, with
/// bhyve's exit codes: every vCPU halted with interrupts off → Halted, a triple fault → TripleFault, a
/// host-side failure (bad image, device timeout, a child that threw) → Error; a write to isa-debug-exit →
/// the status the guest wrote (QEMU's convention); a guest reset request (i8042 pulse, port 0xCF9) → Reset
/// (the <see cref="VmRunner"/> builds the VM again unless told not to); ACPI S5 or Ctrl-A x → PowerOff.
/// Every device's interrupt goes to one ISA interrupt target, the <see cref="IsaIrqRouter"/>.
/// The VM's timer service (one thread, host clock) serves the PIT and the RTC and is disposed last.
/// Ending is orderly: every child gets a PoisonPill, which queues behind the accesses already in its
/// mailbox, so a device finishes what the guest wrote (the last console bytes) before it stops. When all
/// children are gone (vCPU threads joined), it tells <c>reportTo</c> <see cref="VmProtocol.VmExited"/> and
/// stops; guest RAM is freed last.
/// </summary>
public sealed partial class VmSupervisor : ReceiveActor, IWithTimers
{
    /// <summary>COM1: ports 0x3F8-0x3FF, IRQ 4.</summary>
    public const ushort Com1Port = 0x3F8;
    public const int Com1Gsi = 4;
    /// <summary>How long children get to drain their mailboxes at the end before they are stopped outright.</summary>
    public static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(10);

    private readonly VmConfig _config;
    private int VcpuCount => _config.Topology.Cpus;
    private readonly IActorRef _reportTo;
    private readonly VcpuTotals? _totals;
    private readonly VmPersistentState? _persistent;
    private readonly HashSet<int> _haltedForGood = new();
    private readonly HashSet<IActorRef> _children = new();
    private GuestMemory? _memory;
    /// <summary>The ISA interrupt router (a mailbox-less reference, released when the VM stops).</summary>
    private IsaIrqRouter? _isaIrq;
    private IrqStorms? _storms;
    private IReadOnlyList<string> _pciDeviceNames = [];

    /// <summary>The names fault rules may give: the device actors and the PCI devices.</summary>
    private HashSet<string> FaultDeviceNames() => _children.Select(c => c.Path.Name).Concat(_pciDeviceNames).ToHashSet();
    private HostTimerService? _hostTimers;
    /// <summary>The deterministic schedule this VM runs in (it outlives the VM across reboots); null: real time.</summary>
    private DeterministicScheduler? Scheduler => _persistent?.Scheduler;
    /// <summary>The fault engine of the run (it outlives the VM across reboots); null: no faults.</summary>
    private Actorvisor.Kernel.Faults.FaultEngine? Faults => _persistent?.Faults;
    private VmProtocol.VmExited? _outcome;
    /// <summary>COM1, where console input goes.</summary>
    private IActorRef? _console;
    /// <summary>The last exception a child failed with (the decider runs on this actor's thread).</summary>
    private Exception? _lastFailure;

    public ITimerScheduler Timers { get; set; } = null!;

    private sealed record DrainTimedOut
    {
        public static readonly DrainTimedOut Instance = new();
    }

    /// <summary>Deterministic schedule: stop the children now, off the scheduler thread (see <see cref="Finish"/>).</summary>
    private sealed record BeginDrain
    {
        public static readonly BeginDrain Instance = new();
    }

    /// <param name="totals">Where the vCPUs add what they executed when they stop (null: nowhere).</param>
    /// <param name="persistent">What outlives this instance across guest reboots (the CMOS); null: power-on state.</param>
    public static Props Props(VmConfig config, IActorRef reportTo, VcpuTotals? totals = null, VmPersistentState? persistent = null) =>
        Akka.Actor.Props.Create(() => new VmSupervisor(config, reportTo, totals, persistent));

    public VmSupervisor(VmConfig config, IActorRef reportTo, VcpuTotals? totals = null, VmPersistentState? persistent = null)
    {
        _config = config;
        _reportTo = reportTo;
        _totals = totals;
        _persistent = persistent;
        _lifecycle = persistent?.Lifecycle ?? new VmLifecycle();
        _vcpus = new IActorRef[config.Topology.Cpus];
        Running();
    }

    private void Running()
    {
        Receive<VcpuProtocol.HaltedForGood>(m =>
        {
            _haltedForGood.Add(m.VcpuId);
            if (_haltedForGood.Count == VcpuCount) Finish(VmExitCode.Halted, null);
        });
        Receive<VcpuProtocol.Woke>(m => { _haltedForGood.Remove(m.VcpuId); }); // a block: a bool result would mean "unhandled"
        Receive<VcpuProtocol.ShutDown>(m => Finish(VmExitCode.TripleFault, $"vcpu {m.VcpuId}: triple fault ({m.Reason})"));
        Receive<VcpuProtocol.Failed>(m => Finish(VmExitCode.Error, $"vcpu {m.VcpuId}: {m.Error}"));
        Receive<VcpuProtocol.Started>(_ => { });
        Receive<DebugExitProtocol.ExitRequested>(m => Finish(VmExitCode.GuestRequested, null, m.Status));
        Receive<LifecycleProtocol.ResetRequested>(m => Finish(VmExitCode.Reset, $"the guest rebooted ({m.Source})"));
        Receive<LifecycleProtocol.PowerOffRequested>(_ => Finish(VmExitCode.PowerOff, null));
        Receive<VmProtocol.Quit>(m => Finish(VmExitCode.PowerOff, m.Reason));
        Receive<VmProtocol.ConsoleInput>(m =>
        {
            // In the deterministic schedule input reaches the guest at an instruction boundary the scheduler picks (and records).
            if (Scheduler is { } s) s.PostInput(m.Data);
            else _console?.Tell(new UartProtocol.HostInput(m.Data));
        });
        Controls();
        Receive<Terminated>(t =>
        {
            _children.Remove(t.ActorRef);
            Finish(VmExitCode.Error, _lastFailure is { } e
                ? $"{t.ActorRef.Path.Name} failed: {e.GetType().Name}: {e.Message}"
                : $"{t.ActorRef.Path.Name} stopped unexpectedly");
        });
    }

    private void Ending()
    {
        Receive<Terminated>(t =>
        {
            _children.Remove(t.ActorRef);
            if (_children.Count == 0) Context.Stop(Self);
        });
        Receive<BeginDrain>(_ => Drain());
        Receive<DrainTimedOut>(_ =>
        {
            foreach (var c in _children) Context.Stop(c);
        });
        // The guest wrote isa-debug-exit before the VM ended (a vCPU's write is queued at that device
        // before its later halt or fault is reported here, but the two reach this actor by different
        // paths): as in QEMU, where that write ends the process at once, the guest's status wins.
        Receive<DebugExitProtocol.ExitRequested>(m =>
        {
            if (_outcome is { Code: not VmExitCode.GuestRequested })
                _outcome = new VmProtocol.VmExited(_config.Name, VmExitCode.GuestRequested, null, m.Status);
        });
        // Likewise a reset or power-off the guest asked a device for and then halted: the device's request
        // comes from a write queued before the halt was reported, and on hardware it would have acted at once.
        Receive<LifecycleProtocol.ResetRequested>(m => OverrideHalt(VmExitCode.Reset, $"the guest rebooted ({m.Source})"));
        Receive<LifecycleProtocol.PowerOffRequested>(_ => OverrideHalt(VmExitCode.PowerOff, null));
        RefuseControls();
        ReceiveAny(_ => { }); // late vCPU reports change nothing now
    }

    protected override void PreStart()
    {
        try
        {
            LifecycleTrace.Transition(_config.Name, "created", "building");
            Build();
            _lifecycle.TryMove(VmState.Running, "built", out _);
            LifecycleTrace.Transition(_config.Name, "building", "running");
        }
        catch (Exception e) when (e is KernelImageException or OutOfMemoryException or BusRegistrationException
                                      or Actorvisor.Kernel.Faults.FaultRuleException)
        {
            Finish(VmExitCode.Error, e.Message);
        }
        catch (Exception e)
        {
            Finish(VmExitCode.Error, $"building the VM failed: {e.GetType().Name}: {e.Message}");
        }
    }

    private void Build()
    {
        _memory = new GuestMemory(_config.MemorySize);
        // The interrupt fabric: LAPICs on the APIC bus, the IOAPIC, the 8259 pair (its INTR on the BSP's LINT0),
        // and the ISA router that drives PIC and IOAPIC pins together.
        var apicBus = Spawn(ApicBusActor.Props(), "apic-bus");
        var ioapic = Spawn(IoApicActor.Props(apicBus), "ioapic");
        var cpuModel = CpuModel.Default with { Topology = _config.Topology };
        // Real time: the host's clock and a timer thread. Deterministic: the schedule's instruction clock.
        TimeProvider time = Scheduler?.Clock ?? TimeProvider.System;
        ITimerService timers = (ITimerService?)Scheduler?.Clock.Timers
            ?? (_hostTimers = new HostTimerService(TimeProvider.System, $"timers-{_config.Name}"));
        var lapics = new VcpuLapic[VcpuCount];
        var lapicActors = new IActorRef[VcpuCount];
        for (var id = 0; id < VcpuCount; id++)
        {
            lapics[id] = new VcpuLapic(id, time, cpuModel.BusHz, apicBus, ioapic, pic: null,
                (byte)_config.Topology.ApicIdOf(id));
            lapicActors[id] = Spawn(LapicActor.Props(lapics[id]), $"lapic-{id}");
            apicBus.Tell(new ApicBusActor.Attach(lapics[id], lapicActors[id]));
        }
        _lapics = lapics;
        var pic = Spawn(PicActor.Props(lapicActors[0]), "pic");
        lapics[0].ConnectPic(pic);
        // What a BIOS leaves behind: the BSP's LAPIC in virtual wire mode (8259 INTR through LINT0 as ExtINT).
        lapics[0].EnterVirtualWireMode();

        // PCI bus 0 (its INTx routes feed the firmware tables, so it comes before them).
        var pci = PciPlatform.Create(_config.PciDevices, _memory, pic, ioapic, deterministic: Scheduler is not null, faults: Faults);
        _pciDeviceNames = pci.DeviceNames;
        // What firmware leaves in the BIOS area for any kernel: ACPI tables (Linux finds the IOAPIC, the CPUs,
        // the PM timer, S5 and PCI there) and an MP table; a Linux kernel is also told where the RSDP is.
        var platform = PlatformDescription.Standard(VcpuCount, hpet: true) with
        {
            ApicIds = Enumerable.Range(0, VcpuCount).Select(i => (byte)_config.Topology.ApicIdOf(i)).ToArray(),
            HpetBlockId = unchecked((uint)HpetRegisters.CapabilitiesValue),
            Pci = pci.Description,
        };
        var firmware = FirmwareTables.Write(_memory, platform);
        var kernel = KernelLoader.LoadFile(_memory, _config.KernelPath, _config.Cmdline, _config.Modules, _config.InitrdPath, firmware.Rsdp);

        // THE place devices send SetIrq/PulseIrq/Msi to: every interrupt-raising device gets this target.
        var lines = Spawn(IrqLinesActor.Props(), "irq-lines");
        _irqLines = lines;
        _isaIrq = new IsaIrqRouter(Context.System, pic, ioapic, apicBus, lines) { Faults = Faults };
        if (Faults is { } faults)
        {
            faults.Timers = timers;
            _storms = new IrqStorms(faults, _isaIrq);
        }
        var isaIrq = _isaIrq;

        // The console UART handles each access on the thread that makes it (the vCPU's), as the deterministic schedule
        // does for every device: Linux polls LSR before every byte it prints, and each such read waited 10-15 µs for a
        // thread-pool worker to wake, run the actor and wake the vCPU again (18 K reads in a boot to /init). The
        // guest's console writes thus reach the output stream from the vCPU thread, as in QEMU.
        var uart = Spawn(UartActor.Props(isaIrq, Com1Gsi, _config.Console, StateFor("uart-0")), "uart-0", onSenderThread: true);
        _console = uart;
        if (Scheduler is { } scheduler) scheduler.DeliverInput = data => uart.Tell(new UartProtocol.HostInput(data));
        var bus = IoBus<IActorRef>.Empty
            .AddPio(PicRegisters.MasterPort, PicRegisters.PortCount, pic)
            .AddPio(PicRegisters.SlavePort, PicRegisters.PortCount, pic)
            .AddPio(PicRegisters.ElcrPort, PicRegisters.ElcrCount, pic)
            .AddMmio(IoApicRegisters.DefaultBase, IoApicRegisters.WindowSize, ioapic)
            .AddPio(Com1Port, UartRegisters.RegisterCount, uart);
        var pit = Spawn(PitActor.Props(isaIrq, TimersOf(timers, "pit"), StateFor("pit")), "pit");
        var below4G = Math.Min(_memory.RamSize, GuestMemory.PciHoleStart);
        var rtc = Spawn(RtcActor.Props(isaIrq, TimersOf(timers, "rtc"), below4G, _memory.RamSize - below4G, VcpuCount, _persistent?.Cmos, StateFor("rtc")), "rtc");
        var i8042 = Spawn(I8042Actor.Props(isaIrq), "i8042");
        var resetControl = Spawn(ResetControlActor.Props(), "reset-control");
        var pm = Spawn(AcpiPmActor.Props(isaIrq, TimersOf(timers, "acpi-pm")), "acpi-pm");
        // The router also takes the HPET's LegacyReplacement switch, which cuts the PIT's IRQ 0 and the RTC's IRQ 8.
        (_rtc, _pm) = (rtc, pm);
        var hpet = Spawn(HpetActor.Props(isaIrq, TimersOf(timers, "hpet"), legacyObserver: isaIrq), "hpet");
        bus = bus
            .AddPio(PitRegisters.IoBase, PitRegisters.IoSize, pit)
            .AddPio(PitRegisters.PortB, 1, pit)
            .AddPio(RtcRegisters.IoBase, RtcRegisters.IoSize, rtc)
            .AddPio(I8042Registers.DataPort, 1, i8042)
            .AddPio(I8042Registers.CommandPort, 1, i8042)
            .AddPio(AcpiPmRegisters.IoBase, AcpiPmRegisters.IoSize, pm)
            .AddMmio(HpetRegisters.DefaultBase, HpetRegisters.WindowSize, hpet);
        bus = FirmwareAndTestDevices.Attach(bus, _config, _memory, VcpuCount, isaIrq, Self, Spawn);
        // The PCI host takes 0xCF8-0xCFF and hands the reset control register's byte port 0xCF9 on.
        bus = pci.Attach(bus, isaIrq, resetControl, Spawn);

        for (var id = 0; id < VcpuCount; id++)
        {
            // The BSP enters the kernel; the APs wait for INIT-SIPI-SIPI in their power-on state.
            var options = new VcpuOptions(id, _memory, bus, Boot: id == 0 ? kernel.Enter : cpu => cpu.EnterWaitForSipi(),
                ReadTimeout: _config.DeviceReadTimeout, Lapic: lapics[id], Model: cpuModel, Totals: _totals, Scheduler: Scheduler, Faults: Faults);
            _vcpus[id] = Spawn(VcpuActor.Props(options), $"cpu-{id}");
            _vcpus[id].Tell(VcpuProtocol.Start.Instance);
        }
        // A rule naming a device this VM does not have is an error the user sees, not a rule that never fires.
        if (Faults is { } engine)
        {
            var names = FaultDeviceNames();
            var problems = engine.Rules.SelectMany(r => r.Validate(names)).ToArray();
            if (problems.Length > 0) throw new Actorvisor.Kernel.Faults.FaultRuleException(string.Join("; ", problems));
        }
        // Deterministic: every vCPU has joined the schedule with its Start queued; only now does any run.
        Scheduler?.Thaw();
    }

    /// <summary>A device's timer service, with the fault engine between it and the VM's when there are rules.</summary>
    private ITimerService TimersOf(ITimerService timers, string device) =>
        Faults is { } f ? new Actorvisor.Kernel.Faults.FaultingTimerService(timers, f, device) : timers;

    private IActorRef Spawn(Props props, string name) => Spawn(props, name, onSenderThread: false);

    /// <param name="onSenderThread">Handle each message on the thread that sends it (<see cref="InlineDispatcher"/>) in
    /// real time too, when the ActorSystem has that dispatcher (Host's configuration has).</param>
    private IActorRef Spawn(Props props, string name, bool onSenderThread)
    {
        // Deterministic: every device, LAPIC and vCPU actor handles a message on the thread that sends it.
        if (Scheduler is not null || onSenderThread && Context.System.Dispatchers.HasDispatcher(InlineDispatcher.Id))
            props = props.WithDispatcher(InlineDispatcher.Id);
        var child = Context.ActorOf(props, name);
        Actorvisor.Actors.Devices.MailboxDepth.Track(_config.Name, child);
        Context.Watch(child);
        _children.Add(child);
        return child;
    }

    /// <summary>
    /// By default a failing child ends the VM: restarting a device would silently reset registers the guest has
    /// programmed, and restarting a vCPU would lose its state. The child is stopped and its Terminated
    /// ends the VM with the failure as the message (the VM's exit reports it; Akka need not log it too).
    /// A device's policy in <see cref="VmConfig.Supervision"/> may say otherwise (VmSupervisor.Supervision.cs).
    /// </summary>
    protected override SupervisorStrategy SupervisorStrategy() => new DeviceSupervisorStrategy(this);

    private void OverrideHalt(VmExitCode code, string? message)
    {
        if (_outcome is { Code: VmExitCode.Halted }) _outcome = new VmProtocol.VmExited(_config.Name, code, message);
    }

    private void Finish(VmExitCode code, string? message, int? guestStatus = null)
    {
        if (_outcome is not null) return;
        _outcome = new VmProtocol.VmExited(_config.Name, code, message, guestStatus);
        _lifecycle.TryMove(VmLifecycle.StateAfter(code), message ?? code.ToString(), out _);
        LifecycleTrace.Transition(_config.Name, "running", "ending", $"{code}{(message is null ? "" : ": " + message)}");
        Become(Ending);
        if (_children.Count == 0)
        {
            Context.Stop(Self);
            return;
        }
        if (Scheduler is { } scheduler)
        {
            // This supervisor runs inline too, so this is the instruction that ended the run: no slice runs after
            // it, and the run ends at the same instruction count every time. The children stop a moment later,
            // from Akka's scheduler thread: stopped inline here, a vCPU's PostStop would run under its own
            // instruction and guest RAM would be freed beneath it.
            scheduler.Freeze();
            Timers.StartSingleTimer("begin-drain", BeginDrain.Instance, TimeSpan.Zero);
            return;
        }
        Drain();
    }

    private void Drain()
    {
        foreach (var c in _children) c.Tell(PoisonPill.Instance);
        Timers.StartSingleTimer("drain", DrainTimedOut.Instance, DrainTimeout);
    }

    protected override void PostStop()
    {
        // Children, and so the vCPU threads, have stopped: the outcome can go out and RAM can go.
        _reportTo.Tell(_outcome ?? new VmProtocol.VmExited(_config.Name, VmExitCode.Error, "the VM was stopped from outside before it ended"));
        LifecycleTrace.Transition(_config.Name, "ending", "stopped", (_outcome?.Code ?? VmExitCode.Error).ToString());
        _memory?.Dispose();
        _storms?.Dispose();
        _isaIrq?.Dispose();
        _hostTimers?.Dispose();
        _countingLease?.Dispose();
    }
}
