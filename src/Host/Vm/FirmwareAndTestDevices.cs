using Akka.Actor;
using Actorvisor.Actors.Devices.DebugExit;
using Actorvisor.Actors.Devices.FwCfg;
using Actorvisor.Actors.Devices.PcTestdev;
using Actorvisor.Kernel.Bus;
using Actorvisor.Kernel.Memory;

namespace Actorvisor.Host.Vm;

/// <summary>
/// The devices OS test kernels expect of a QEMU PC: fw_cfg (always present, as in QEMU) and, when asked
/// for with <c>--device</c>, isa-debug-exit and pc-testdev. Each is spawned through the supervisor's
/// <c>spawn</c> (so it is watched) and put on the bus.
/// </summary>
public static class FirmwareAndTestDevices
{
    /// <summary>fw_cfg's selector and data ports (0x510, 0x511); the DMA registers at 0x514 are not provided.</summary>
    public const ushort FwCfgPortCount = 2;
    /// <summary>pc-testdev's low ports: scratch 0xE0, flush 0xE4, byte-wise scratch 0xE8 (each 4 wide).</summary>
    public const ushort TestdevLowPortCount = 12;

    /// <param name="irqFabric">Where pc-testdev's IRQ-line writes go as SetIrq (the interrupt fabric).</param>
    /// <param name="vm">Where isa-debug-exit sends ExitRequested (the VM supervisor).</param>
    public static IoBus<IActorRef> Attach(IoBus<IActorRef> bus, VmConfig config, GuestMemory memory, int vcpus,
        IActorRef irqFabric, IActorRef vm, Func<Props, string, IActorRef> spawn)
    {
        var fwCfg = spawn(FwCfgActor.Props(memory.RamSize, vcpus, vcpus), "fw-cfg");
        bus = bus.AddPio(FwCfgRegisters.SelectorPort, FwCfgPortCount, fwCfg);

        for (var i = 0; i < config.Devices.Count; i++)
        {
            var device = config.Devices[i];
            try
            {
                switch (device)
                {
                    case DeviceSpec.IsaDebugExit d:
                        var exit = spawn(DebugExitActor.Props(new DebugExit(d.IoBase, d.IoSize), vm), $"isa-debug-exit-{i}");
                        bus = bus.AddPio(d.IoBase, d.IoSize, exit);
                        break;
                    case DeviceSpec.PcTestdev:
                        var testdev = spawn(PcTestdevActor.Props(irqFabric, memory), $"pc-testdev-{i}");
                        bus = bus.AddPio(PcTestdevRegisters.IoPort, TestdevLowPortCount, testdev)
                            .AddPio(PcTestdevRegisters.IrqLine, PcTestdevRegisters.IrqLines, testdev)
                            .AddMmio(PcTestdevRegisters.IoMem, PcTestdevRegisters.IoMemSize, testdev);
                        break;
                }
            }
            catch (BusRegistrationException e)
            {
                throw new BusRegistrationException($"--device {DeviceSpec.NameOf(device)}: {e.Message}");
            }
        }
        return bus;
    }
}
