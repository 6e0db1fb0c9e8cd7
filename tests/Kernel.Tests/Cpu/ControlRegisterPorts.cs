using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Tests.GuestKit;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// A test stand-in for MOV CR and WRMSR EFER while those instructions live on another branch: a 32-bit OUT
/// to port 0xE0/0xE3/0xE4/0xE8 writes CR0/CR3/CR4/EFER with the architectural side effects a mode
/// transition depends on (EFER.LMA follows CR0.PG with EFER.LME, SDM 9.8.5; the TLB is flushed). Every
/// other access goes to the wrapped <see cref="TestPlatform"/>.
/// </summary>
internal sealed class ControlRegisterPorts(TestPlatform inner) : ICpuPlatform
{
    public const ushort Cr0Port = 0xE0, Cr3Port = 0xE3, Cr4Port = 0xE4, EferPort = 0xE8;

    public SoftwareCpu? Cpu { get; set; }

    public uint PortRead(int vcpuId, ushort port, int size) => inner.PortRead(vcpuId, port, size);

    public void PortWrite(int vcpuId, ushort port, int size, uint value)
    {
        var cpu = Cpu;
        if (cpu is null || size != 4 || port is not (Cr0Port or Cr3Port or Cr4Port or EferPort))
        {
            inner.PortWrite(vcpuId, port, size, value);
            return;
        }
        switch (port)
        {
            case Cr0Port:
                cpu.Cr0 = value | Cr0.ET;
                if ((value & Cr0.PG) != 0 && (cpu.EferValue & Efer.LME) != 0) cpu.EferValue |= Efer.LMA;
                if ((value & Cr0.PG) == 0) cpu.EferValue &= ~Efer.LMA;
                break;
            case Cr3Port: cpu.Cr3 = value; break;
            case Cr4Port: cpu.Cr4 = value; break;
            case EferPort: cpu.EferValue = (cpu.EferValue & Efer.LMA) | (value & Efer.Writable); break;
        }
        cpu.UpdateMode();
        cpu.FlushTlb(includeGlobal: true);
    }

    public ulong MmioRead(int vcpuId, ulong address, int size) => inner.MmioRead(vcpuId, address, size);

    public void MmioWrite(int vcpuId, ulong address, int size, ulong value) => inner.MmioWrite(vcpuId, address, size, value);
}
