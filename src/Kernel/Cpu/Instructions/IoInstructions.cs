using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>IN and OUT through the platform bus (INS/OUTS live with the string instructions).</summary>
internal static unsafe class IoInstructions
{
    public static void Register(Dispatch.HandlerTable t)
    {
        t.Set(Mnemonic.In, &In);
        t.Set(Mnemonic.Out, &Out);
    }

    private static void In(SoftwareCpu cpu, in Instruction i)
    {
        var size = i.Op0Register.GetSize();
        var port = i.Op1Kind == OpKind.Register ? (ushort)cpu.Gprs[Gpr.RDX] : i.Immediate8;
        cpu.CheckIoPermission(port, size);
        var v = cpu.Platform.PortRead(cpu.Id, port, size);
        cpu.WriteGpr(i.Op0Register, v);
    }

    private static void Out(SoftwareCpu cpu, in Instruction i)
    {
        var size = i.Op1Register.GetSize();
        var port = i.Op0Kind == OpKind.Register ? (ushort)cpu.Gprs[Gpr.RDX] : i.Immediate8;
        cpu.CheckIoPermission(port, size);
        cpu.Platform.PortWrite(cpu.Id, port, size, (uint)cpu.ReadGpr(i.Op1Register));
        // A port write may raise an interrupt or stop the machine: let the run loop look.
        cpu.EndBlock = true;
    }
}
