using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.TestSupport;

/// <summary>
/// A tiny 32-bit runtime for test kernels written with Iced's <see cref="Assembler"/>: print a string, a
/// byte range or a hex number on COM1 (polled, as an early console does), and exit through isa-debug-exit.
/// The routines are emitted after the program by <see cref="EmitData"/>. Every routine keeps all registers.
/// </summary>
public sealed class Guest32(Assembler a)
{
    public const ushort DebugExitPort = 0xF4;

    private Label _putc, _puts, _putn, _hex;

    public Assembler A => a;

    /// <summary>
    /// Prints a literal. The string sits inline after a CALL, which pushes its address (Iced's assembler
    /// has label operands only as RIP-relative memory, which 32-bit code lacks).
    /// </summary>
    public void Print(string text)
    {
        var after = a.CreateLabel();
        a.push(esi);
        a.call(after);
        a.db([.. System.Text.Encoding.ASCII.GetBytes(text), 0]);
        a.Label(ref after);
        a.pop(esi);
        a.call(PutsLabel);
        a.pop(esi);
    }

    /// <summary>Prints EAX as 8 hex digits.</summary>
    public void Hex() => a.call(HexLabel);

    /// <summary>Prints the zero-terminated string at ESI.</summary>
    public void Puts() => a.call(PutsLabel);

    /// <summary>Prints ECX bytes from ESI.</summary>
    public void Putn() => a.call(PutnLabel);

    /// <summary>Prints a label, then the hex value of a 32-bit memory operand, then a space or newline.</summary>
    public void Field(string name, AssemblerMemoryOperand value, string after = " ")
    {
        Print(name + "=");
        a.push(eax);
        a.mov(eax, value);
        Hex();
        a.pop(eax);
        Print(after);
    }

    /// <summary>Writes EAX to isa-debug-exit, then stops (CLI; HLT) in case nothing listens there.</summary>
    public void ExitWithEax()
    {
        a.mov(dx, DebugExitPort);
        a.@out(dx, eax);
        a.cli();
        a.hlt();
    }

    private Label PutcLabel => Ensure(ref _putc);
    private Label PutsLabel => Ensure(ref _puts);
    private Label PutnLabel => Ensure(ref _putn);
    private Label HexLabel => Ensure(ref _hex);

    private Label Ensure(ref Label l)
    {
        if (l.IsEmpty) l = a.CreateLabel();
        return l;
    }

    /// <summary>The routines; call once, after the program's last instruction.</summary>
    public void EmitData()
    {
        // putc: AL to COM1 once LSR says the transmitter holding register is empty.
        var l = PutcLabel;
        a.Label(ref l);
        a.push(edx);
        a.push(eax);
        var wait = a.CreateLabel();
        a.Label(ref wait);
        a.mov(dx, GuestImages.Com1Lsr);
        a.@in(al, dx);
        a.test(al, GuestImages.LsrThrEmpty);
        a.jz(wait);
        a.pop(eax);
        a.mov(dx, GuestImages.Com1);
        a.@out(dx, al);
        a.pop(edx);
        a.ret();

        l = PutsLabel;
        a.Label(ref l);
        a.pushad();
        var next = a.CreateLabel();
        var done = a.CreateLabel();
        a.Label(ref next);
        a.lodsb();
        a.test(al, al);
        a.jz(done);
        a.call(PutcLabel);
        a.jmp(next);
        a.Label(ref done);
        a.popad();
        a.ret();

        l = PutnLabel;
        a.Label(ref l);
        a.pushad();
        var more = a.CreateLabel();
        var end = a.CreateLabel();
        a.Label(ref more);
        a.jecxz(end);
        a.lodsb();
        a.call(PutcLabel);
        a.dec(ecx);
        a.jmp(more);
        a.Label(ref end);
        a.popad();
        a.ret();

        l = HexLabel;
        a.Label(ref l);
        a.pushad();
        a.mov(ebx, eax);
        a.mov(ecx, 8);
        var digit = a.CreateLabel();
        var isNum = a.CreateLabel();
        a.Label(ref digit);
        a.rol(ebx, 4);
        a.mov(al, bl);
        a.and(al, 0xF);
        a.add(al, (byte)'0');
        a.cmp(al, (byte)'9');
        a.jbe(isNum);
        a.add(al, 'A' - '9' - 1);
        a.Label(ref isNum);
        a.call(PutcLabel);
        a.dec(ecx);
        a.jnz(digit);
        a.popad();
        a.ret();
    }
}

/// <summary>
/// Multiboot (version 1) test kernels: a header, then 32-bit code built with <see cref="Guest32"/>, either
/// wrapped in a minimal ELF32 or as a flat image whose header carries the address fields (flag 16).
/// </summary>
public static class MultibootKernels
{
    public const uint HeaderMagic = 0x1BADB002;
    public const uint FlagPageAlign = 1, FlagMemoryInfo = 2, FlagAddressFields = 1 << 16;
    /// <summary>The stack a test kernel sets up for itself (the spec leaves ESP undefined).</summary>
    public const uint Stack = 0x80000;

    /// <summary>An ELF32 multiboot kernel at <paramref name="address"/>; the header opens its one segment.</summary>
    public static byte[] Elf(uint address, Action<Guest32> body, uint flags = FlagPageAlign | FlagMemoryInfo, uint bss = 0)
    {
        var code = Build(address, body, flags, addressFields: false, bss);
        return GuestImages.Elf32(address + 12, new ElfSegmentSpec(address, address, code, (ulong)code.Length + bss));
    }

    /// <summary>A flat multiboot image loaded at <paramref name="address"/> by the header's address fields.</summary>
    public static byte[] Flat(uint address, Action<Guest32> body, uint flags = FlagMemoryInfo, uint bss = 0) =>
        Build(address, body, flags | FlagAddressFields, addressFields: true, bss);

    /// <summary>
    /// Header (12 bytes, or 32 with address fields), then the entry: set a stack, run the body, which ends
    /// the run itself. Assembled twice: the address fields depend on the image's size, which does not
    /// depend on them.
    /// </summary>
    private static byte[] Build(uint address, Action<Guest32> body, uint flags, bool addressFields, uint bss)
    {
        uint size = 0;
        for (var pass = 0; pass < 2; pass++)
        {
            var image = GuestImages.Assemble(32, address, a =>
            {
                var g = new Guest32(a);
                foreach (var v in new[] { HeaderMagic, flags, unchecked(0u - HeaderMagic - flags) }) a.dd(v);
                var headerLength = 12u;
                if (addressFields)
                {
                    headerLength = 32;
                    // header_addr, load_addr, load_end_addr (0: the whole file), bss_end_addr, entry_addr.
                    foreach (var v in new uint[] { address, address, 0, size == 0 ? 0 : address + size + bss, address + headerLength }) a.dd(v);
                }
                a.mov(esp, Stack);
                body(g);
                g.EmitData();
            });
            if (pass == 1 && image.Length != size) throw new InvalidOperationException("multiboot kernel changed size between passes");
            size = (uint)image.Length;
            if (pass == 1) return image;
        }
        throw new InvalidOperationException("unreachable");
    }

    /// <summary>
    /// Reports what the loader handed over, as the guest sees it, one "name=value" field per line:
    /// the entry state (EAX, EBX, EFLAGS, CR0), the first two pages cleared by the kernel (they are its own),
    /// then the information structure: flags, mem_lower/upper, the command line, each module's string and
    /// bytes, each memory-map entry, the loader name. Ends by writing <paramref name="exitValue"/> to
    /// isa-debug-exit.
    /// </summary>
    public static void Report(Guest32 g, uint exitValue)
    {
        var a = g.A;
        // Entry state first, before anything changes it. EBP = magic, EDI = info, EDX = EFLAGS, ECX = CR0.
        a.mov(ebp, eax);
        a.mov(edi, ebx);
        a.pushfd();
        a.pop(edx);
        a.mov(ecx, cr0);
        // The first two pages are the kernel's: wipe them (nothing the loader left may live there).
        a.push(edi);
        a.push(ecx);
        a.xor(eax, eax);
        a.mov(edi, 0);
        a.mov(ecx, 0x2000 / 4);
        a.rep.stosd();
        a.pop(ecx);
        a.pop(edi);

        g.Print("magic=");
        a.mov(eax, ebp);
        g.Hex();
        g.Print("\ninfo=");
        a.mov(eax, edi);
        g.Hex();
        g.Print("\neflags=");
        a.mov(eax, edx);
        g.Hex();
        g.Print("\ncr0=");
        a.mov(eax, ecx);
        g.Hex();
        g.Print("\n");
        g.Field("flags", __dword_ptr[edi], "\n");
        g.Field("mem_lower", __dword_ptr[edi + 4], "\n");
        g.Field("mem_upper", __dword_ptr[edi + 8], "\n");
        g.Print("cmdline=");
        a.mov(esi, __dword_ptr[edi + 16]);
        g.Puts();
        g.Print("\n");
        g.Field("mods_count", __dword_ptr[edi + 20], "\n");

        // Each module: "module=<string>:<bytes>:<start, page offset>".
        var modLoop = a.CreateLabel();
        var modDone = a.CreateLabel();
        a.mov(ebx, __dword_ptr[edi + 24]);
        a.mov(ebp, __dword_ptr[edi + 20]);
        a.Label(ref modLoop);
        a.test(ebp, ebp);
        a.jz(modDone);
        g.Print("module=");
        a.mov(esi, __dword_ptr[ebx + 8]);
        g.Puts();
        g.Print(":");
        a.mov(esi, __dword_ptr[ebx]);
        a.mov(ecx, __dword_ptr[ebx + 4]);
        a.sub(ecx, esi);
        g.Putn();
        g.Print(":");
        a.mov(eax, __dword_ptr[ebx]);
        a.and(eax, 0xFFF);
        g.Hex();
        g.Print("\n");
        a.add(ebx, 16);
        a.dec(ebp);
        a.jmp(modLoop);
        a.Label(ref modDone);

        // Each memory-map entry: "mmap=<base hi><base lo> <length hi><length lo> <type>"; entries are
        // walked by their size field, as the spec says.
        var mmLoop = a.CreateLabel();
        var mmDone = a.CreateLabel();
        a.mov(ebx, __dword_ptr[edi + 48]);
        a.mov(ebp, __dword_ptr[edi + 44]);
        a.add(ebp, ebx);
        a.Label(ref mmLoop);
        a.cmp(ebx, ebp);
        a.jae(mmDone);
        g.Print("mmap=");
        a.mov(eax, __dword_ptr[ebx + 8]);
        g.Hex();
        a.mov(eax, __dword_ptr[ebx + 4]);
        g.Hex();
        g.Print(" ");
        a.mov(eax, __dword_ptr[ebx + 16]);
        g.Hex();
        a.mov(eax, __dword_ptr[ebx + 12]);
        g.Hex();
        g.Print(" ");
        a.mov(eax, __dword_ptr[ebx + 20]);
        g.Hex();
        g.Print("\n");
        a.mov(eax, __dword_ptr[ebx]);
        a.lea(ebx, __[ebx + eax + 4]);
        a.jmp(mmLoop);
        a.Label(ref mmDone);

        g.Print("loader=");
        a.mov(esi, __dword_ptr[edi + 64]);
        g.Puts();
        g.Print("\n");
        a.mov(eax, exitValue);
        g.ExitWithEax();
    }

    /// <summary>Reads fw_cfg's signature, CPU count and RAM size and prints them; exits with <paramref name="exitValue"/>.</summary>
    public static void ReportFwCfg(Guest32 g, uint exitValue)
    {
        var a = g.A;
        void Select(ushort key)
        {
            a.mov(dx, 0x510);
            a.mov(ax, key);
            a.@out(dx, ax);
            a.mov(dx, 0x511);
        }
        // Reads n bytes little-endian into EAX (n <= 4), byte by byte from the data port.
        void ReadLe(int n)
        {
            a.xor(ebx, ebx);
            for (var i = 0; i < n; i++)
            {
                a.@in(al, dx);
                a.movzx(eax, al);
                if (i > 0) a.shl(eax, (byte)(8 * i));
                a.or(ebx, eax);
            }
            a.mov(eax, ebx);
        }

        g.Print("signature=");
        Select(0x00);
        a.mov(ecx, 4);
        var sig = a.CreateLabel();
        a.Label(ref sig);
        a.@in(al, dx);
        a.mov(__byte_ptr[0x90000], al); // a one-byte buffer: print what the data port gave
        a.push(ecx);
        a.mov(esi, 0x90000);
        a.mov(ecx, 1);
        g.Putn();
        a.pop(ecx);
        a.dec(ecx);
        a.jnz(sig);
        g.Print("\ncpus=");
        Select(0x05);
        ReadLe(2);
        g.Hex();
        g.Print("\nram=");
        Select(0x03);
        ReadLe(4);
        a.mov(edi, eax);
        ReadLe(4);
        g.Hex();   // high half first
        a.mov(eax, edi);
        g.Hex();
        g.Print("\n");
        a.mov(eax, exitValue);
        g.ExitWithEax();
    }
}
