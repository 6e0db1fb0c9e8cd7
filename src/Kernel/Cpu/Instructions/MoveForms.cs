using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// MOV's commonest forms, chosen per decoded instruction when its block is built (the block stores a
/// handler per instruction): a register-to-register copy, a 32/64-bit load or store, an immediate load.
/// Each does exactly what the general <c>DataMove.Mov</c> does for that form, without asking Iced for the
/// operand kinds and register widths on every execution. Anything else keeps the table's handler.
/// </summary>
internal static unsafe class MoveForms
{
    /// <summary>The specialised handler for this instruction, or <paramref name="general"/>.</summary>
    public static delegate*<SoftwareCpu, in Instruction, void> Select(in Instruction i, delegate*<SoftwareCpu, in Instruction, void> general)
    {
        switch (i.Code)
        {
            case Code.Mov_r64_rm64 or Code.Mov_rm64_r64:
                if (i.Op0Kind == OpKind.Register && i.Op1Kind == OpKind.Register) return &Copy64;
                return i.Op0Kind == OpKind.Register ? &Load64 : &Store64;
            case Code.Mov_r32_rm32 or Code.Mov_rm32_r32:
                if (i.Op0Kind == OpKind.Register && i.Op1Kind == OpKind.Register) return &Copy32;
                return i.Op0Kind == OpKind.Register ? &Load32 : &Store32;
            case Code.Mov_r64_imm64:
                return &Immediate64;
            case Code.Mov_r32_imm32:
                return &Immediate32;
            case Code.Mov_rm64_imm32:
                return i.Op0Kind == OpKind.Register ? &Immediate32To64 : general;
            default:
                return general;
        }
    }

    private static void Copy64(SoftwareCpu cpu, in Instruction i) =>
        cpu.GprRef(i.Op0Register - Register.RAX) = cpu.GprRef(i.Op1Register - Register.RAX);

    private static void Copy32(SoftwareCpu cpu, in Instruction i) =>
        cpu.GprRef(i.Op0Register - Register.EAX) = (uint)cpu.GprRef(i.Op1Register - Register.EAX);

    // The loads and stores read and write with the operand size fixed (8 or 4 bytes, as the code says), so
    // the TLB fast path is inlined here instead of asking Iced for the memory size each time.
    private static void Load64(SoftwareCpu cpu, in Instruction i) =>
        cpu.GprRef(i.Op0Register - Register.RAX) = cpu.ReadLinear(cpu.MemoryLinear(in i, 8, AccessKind.Read), 8);

    private static void Load32(SoftwareCpu cpu, in Instruction i) =>
        cpu.GprRef(i.Op0Register - Register.EAX) = (uint)cpu.ReadLinear(cpu.MemoryLinear(in i, 4, AccessKind.Read), 4);

    private static void Store64(SoftwareCpu cpu, in Instruction i) =>
        cpu.WriteLinear(cpu.MemoryLinear(in i, 8, AccessKind.Write), 8, cpu.GprRef(i.Op1Register - Register.RAX));

    private static void Store32(SoftwareCpu cpu, in Instruction i) =>
        cpu.WriteLinear(cpu.MemoryLinear(in i, 4, AccessKind.Write), 4, (uint)cpu.GprRef(i.Op1Register - Register.EAX));

    private static void Immediate64(SoftwareCpu cpu, in Instruction i) =>
        cpu.GprRef(i.Op0Register - Register.RAX) = i.Immediate64;

    private static void Immediate32(SoftwareCpu cpu, in Instruction i) =>
        cpu.GprRef(i.Op0Register - Register.EAX) = i.Immediate32;

    private static void Immediate32To64(SoftwareCpu cpu, in Instruction i) =>
        cpu.GprRef(i.Op0Register - Register.RAX) = (ulong)i.Immediate32to64;
}
