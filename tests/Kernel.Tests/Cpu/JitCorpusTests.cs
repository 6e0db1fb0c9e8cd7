using Actorvisor.Kernel.Cpu.Jit;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// The corpus behind `actorvisor-bench jit`: a compile request written as a line and read back is the same
/// region (blocks, bytes, instructions), and the whole file compiles as the run compiled it.
/// </summary>
public class JitCorpusTests
{
    private const ulong Start = 0xFFFF_FFFF_8100_0000;

    [Fact]
    public void ALineReadBackIsTheSameRegionAndWritesTheSameLine()
    {
        // Two blocks: the head falls through into the second (as a block cut by length does), which jumps back.
        var head = Bytes(Start, a => { a.add(rax, rbx); a.dec(rcx); });
        var second = Bytes(Start + (ulong)head.Length, a => { a.xor(rdx, rax); a.jmp(Start); });
        var line = $"{Start:x}:{Convert.ToHexString(head)} {Start + (ulong)head.Length:x}:{Convert.ToHexString(second)}";

        var region = JitCorpus.Parse(line);

        Assert.Equal(2, region.Length);
        Assert.Same(region, region[0].Region);
        Assert.Equal(2, region[0].Count);
        Assert.Equal(Mnemonic.Dec, region[0].Instructions[1].Mnemonic);
        Assert.Equal(Start + (ulong)head.Length, region[0].EndRip);
        Assert.Equal(Start, region[1].Instructions[1].NearBranch64);
        Assert.Equal(line, JitCorpus.Line(region[0]));
    }

    [Fact]
    public void EveryRegionOfAFileIsCompiled()
    {
        var loop = Bytes(Start, a => { var top = a.CreateLabel(); a.Label(ref top); a.add(rax, __qword_ptr[rsi]); a.dec(rcx); a.jnz(top); });
        var single = Bytes(Start + 0x100, a => { a.mov(rax, __qword_ptr[rsp + 8]); a.ret(); });
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllLines(path, [$"{Start:x}:{Convert.ToHexString(loop)}", $"{Start + 0x100:x}:{Convert.ToHexString(single)}"]);
            var cost = JitCorpus.CompileAll(path);
            Assert.Equal(2, cost.Regions);
            Assert.Equal(2, cost.Compiled);
            Assert.True(cost.IlBytes > 0);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static byte[] Bytes(ulong ip, Action<Assembler> program)
    {
        var a = new Assembler(64);
        program(a);
        var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), ip);
        return stream.ToArray();
    }
}
