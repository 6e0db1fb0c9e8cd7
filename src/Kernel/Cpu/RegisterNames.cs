namespace Actorvisor.Kernel.Cpu;

/// <summary>
/// Registers by name, for control interfaces (bhyvectl's set-reg/get-reg spellings, lower case): the GPRs,
/// rip, rflags, cr0/cr2/cr3/cr4/cr8 and efer. Writes go through the same consistency steps as the
/// instructions that change them would (mode recomputed, TLB flushed), but without the guest-facing checks.
/// </summary>
public sealed partial class SoftwareCpu
{
    private static readonly string[] GprNames =
        ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];

    public static IReadOnlyList<string> RegisterNames { get; } =
        [.. GprNames, "rip", "rflags", "cr0", "cr2", "cr3", "cr4", "cr8", "efer"];

    public bool TryGetRegister(string name, out ulong value)
    {
        var g = Array.IndexOf(GprNames, name);
        if (g >= 0) { value = Gprs[g]; return true; }
        value = name switch
        {
            "rip" => Rip, "rflags" => GetFlags(), "cr0" => Cr0, "cr2" => Cr2, "cr3" => Cr3, "cr4" => Cr4, "cr8" => Cr8,
            "efer" => EferValue, _ => 0,
        };
        return RegisterNames.Contains(name);
    }

    /// <summary>Sets a register by name; false for an unknown name. The CPU must not be running.</summary>
    public bool TrySetRegister(string name, ulong value)
    {
        var g = Array.IndexOf(GprNames, name);
        if (g >= 0) { Gprs[g] = value; return true; }
        NoteInterruptChange(); // CR8 (the TPR) or RFLAGS may make an interrupt deliverable
        switch (name)
        {
            case "rip": Rip = value; break;
            case "rflags": SetFlags(value); break;
            case "cr2": Cr2 = value; break;
            case "cr8": Cr8 = value & 0xF; break;
            case "cr0": Cr0 = value; break;
            case "cr3": Cr3 = value; break;
            case "cr4": Cr4 = value; break;
            case "efer": EferValue = value; break;
            default: return false;
        }
        if (name is "cr0" or "cr3" or "cr4" or "efer")
        {
            UpdateMode();
            FlushTlb(includeGlobal: true);
        }
        ClearDecodeCache();
        return true;
    }
}
