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
        FarTransfers.Register(table);
        DescriptorTableInstructions.Register(table);
        SystemInstructions.Register(table);
        Msr.Register(table);
        CpuidInstruction.Register(table);
        Fpu.Register(table);
        Sse.Register(table);
        return t;
    }

    private static void Unimplemented(SoftwareCpu cpu, in Instruction i) => cpu.OnUnimplemented(i);

    /// <summary>
    /// Registration: a mnemonic-wide handler is a default for all its encodings; a handler for one
    /// <see cref="Code"/> is specific and takes precedence whatever the order. Two handlers at the same
    /// level for one encoding is a bug in the table and fails at start-up.
    /// </summary>
    internal sealed class HandlerTable(delegate*<SoftwareCpu, in Instruction, void>[] t)
    {
        private const byte ByMnemonic = 1, ByCode = 2;
        private readonly byte[] _level = new byte[t.Length];

        /// <summary>Every encoding of a mnemonic, in every mode, unless one has a specific handler.</summary>
        public void Set(Mnemonic m, delegate*<SoftwareCpu, in Instruction, void> h)
        {
            if (!CodesByMnemonic.TryGetValue(m, out var codes)) throw new ArgumentException($"no encodings for {m}");
            foreach (var c in codes)
                if (!c.IsInvalidCode()) Put(c, h, ByMnemonic);
        }

        /// <summary>One encoding.</summary>
        public void Set(Code c, delegate*<SoftwareCpu, in Instruction, void> h) => Put(c, h, ByCode);

        private void Put(Code c, delegate*<SoftwareCpu, in Instruction, void> h, byte level)
        {
            var i = (int)c;
            if (_level[i] > level) return;
            if (_level[i] == level && t[i] != h)
                throw new InvalidOperationException($"{c} is registered by two instruction groups");
            t[i] = h;
            _level[i] = level;
        }
    }

    private static bool IsInvalidCode(this Code c) => c == Code.INVALID;
}
