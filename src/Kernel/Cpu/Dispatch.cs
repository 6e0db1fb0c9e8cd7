using Iced.Intel;
using Actorvisor.Kernel.Cpu.Instructions;

namespace Actorvisor.Kernel.Cpu;

/// <summary>
/// The handler table: one function pointer per Iced <see cref="Code"/>. Each instruction group registers
/// its handlers by mnemonic (every encoding of the mnemonic) or by code. Anything unregistered raises #UD
/// and is counted, so a missing instruction is visible rather than silent.
/// </summary>
internal static unsafe class Dispatch
{
    private static readonly int CodeCount = Enum.GetValues<Code>().Max(c => (int)c) + 1;
    private static readonly Dictionary<Mnemonic, List<Code>> CodesByMnemonic = BuildMnemonicIndex();
    public static readonly delegate*<SoftwareCpu, in Instruction, void>[] Handlers = Build();

    private static Dictionary<Mnemonic, List<Code>> BuildMnemonicIndex()
    {
        var d = new Dictionary<Mnemonic, List<Code>>();
        for (var c = 0; c < CodeCount; c++)
        {
            var m = ((Code)c).Mnemonic();
            if (!d.TryGetValue(m, out var list)) d[m] = list = new List<Code>();
            list.Add((Code)c);
        }
        return d;
    }

    private static delegate*<SoftwareCpu, in Instruction, void>[] Build()
    {
        var t = new delegate*<SoftwareCpu, in Instruction, void>[CodeCount];
        for (var i = 0; i < t.Length; i++) t[i] = &Unimplemented;
        var table = new HandlerTable(t);
        // One line per instruction group (SDM volume 2 families; see Instructions/).
        DataMove.Register(table);
        Alu.Register(table);
        Shifts.Register(table);
        MulDiv.Register(table);
        BitOps.Register(table);
        Bcd.Register(table);
        Stack.Register(table);
        Control.Register(table);
        Strings.Register(table);
        IoInstructions.Register(table);
        FlagInstructions.Register(table);
        Segments.Register(table);
        SystemInstructions.Register(table);
        Msr.Register(table);
        CpuidInstruction.Register(table);
        Fpu.Register(table);
        Sse.Register(table);
        return t;
    }

    private static void Unimplemented(SoftwareCpu cpu, in Instruction i) => cpu.OnUnimplemented(i);

    internal sealed class HandlerTable(delegate*<SoftwareCpu, in Instruction, void>[] t)
    {
        /// <summary>Every encoding of a mnemonic, in every mode.</summary>
        public void Set(Mnemonic m, delegate*<SoftwareCpu, in Instruction, void> h)
        {
            if (!CodesByMnemonic.TryGetValue(m, out var codes)) throw new ArgumentException($"no encodings for {m}");
            foreach (var c in codes)
                if (!c.IsInvalidCode()) Set(c, h);
        }

        /// <summary>One encoding. Two groups claiming the same encoding is a bug in the table, not an override.</summary>
        public void Set(Code c, delegate*<SoftwareCpu, in Instruction, void> h)
        {
            var current = t[(int)c];
            if (current != (delegate*<SoftwareCpu, in Instruction, void>)&Unimplemented && current != h)
                throw new InvalidOperationException($"{c} is registered by two instruction groups");
            t[(int)c] = h;
        }
    }

    private static bool IsInvalidCode(this Code c) => c == Code.INVALID;
}
