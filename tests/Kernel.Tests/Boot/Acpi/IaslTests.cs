using System.Diagnostics;
using Actorvisor.Kernel.Boot;
using Actorvisor.Kernel.Memory;
using Xunit.Abstractions;
using static Actorvisor.Kernel.Tests.Boot.Acpi.FirmwareTableReader;

namespace Actorvisor.Kernel.Tests.Boot.Acpi;

/// <summary>
/// The strong test: ACPICA's own disassembler (iasl -d, Debian package acpica-tools) reads every table we
/// write, and the DSDT it prints compiles back to the same AML. Skipped when iasl is not installed.
/// </summary>
public sealed class IaslTests(ITestOutputHelper output) : IDisposable
{
    private readonly ITestOutputHelper _output = output;
    private readonly GuestMemory _mem = new(16 << 20);
    // ACTORVISOR_ACPI_DUMP names a directory to keep the tables and their disassembly in.
    private static readonly string? KeepDir = Environment.GetEnvironmentVariable("ACTORVISOR_ACPI_DUMP");
    private readonly string _dir = KeepDir is { Length: > 0 } d ? Directory.CreateDirectory(d).FullName : Directory.CreateTempSubdirectory("actorvisor-acpi-").FullName;

    public void Dispose()
    {
        _mem.Dispose();
        if (KeepDir is { Length: > 0 }) return;
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static string? Tool(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    private static string? Iasl() => Tool("iasl");

    private (int Exit, string Output) Run(string iasl, params string[] args)
    {
        var psi = new ProcessStartInfo(iasl) { WorkingDirectory = _dir, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result + stderr);
    }

    /// <summary>Writes the table at <paramref name="at"/> to a file, disassembles it, and returns the .dsl text.</summary>
    private string Disassemble(string iasl, string name, byte[] bytes)
    {
        var file = Path.Combine(_dir, name + ".dat");
        File.WriteAllBytes(file, bytes);
        var (exit, output) = Run(iasl, "-d", file);
        Assert.True(exit == 0, $"iasl -d {name} exited {exit}:\n{output}");
        Assert.DoesNotContain("Error", output);
        var dsl = Path.Combine(_dir, name + ".dsl");
        Assert.True(File.Exists(dsl), $"iasl wrote no {name}.dsl:\n{output}");
        var text = File.ReadAllText(dsl);
        Assert.DoesNotContain("**** ", text.Replace("**** Unknown", "")); // iasl's in-listing warnings (bad checksum, bad length) start with ****
        return text;
    }

    [SkippableFact]
    public void IaslDisassemblesEveryTableAndTheDsdtRoundTrips()
    {
        var iasl = Iasl();
        Skip.If(iasl is null, "iasl is not installed (apt-get install acpica-tools): no ACPICA oracle for the tables");
        var a = FirmwareTables.Write(_mem, PlatformDescription.Standard(2, hpet: true)).Acpi;

        // iasl before 2021 cannot load an RSDP from a file (it reads "PTR " as the header's length); the
        // Linux-style scan in AcpiTablesTests checks the RSDP then. A newer iasl must accept it.
        var rsdpFile = Path.Combine(_dir, "rsdp.dat");
        File.WriteAllBytes(rsdpFile, _mem.GetSpan(a.Rsdp, 36).ToArray());
        var (rsdpExit, rsdpOutput) = Run(iasl!, "-d", rsdpFile);
        if (rsdpOutput.Contains("does not contain a valid ACPI table"))
            _output.WriteLine("this iasl cannot disassemble an RSDP file; RSDP checked by the scan test only");
        else
        {
            Assert.True(rsdpExit == 0, rsdpOutput);
            var rsdp = File.ReadAllText(Path.Combine(_dir, "rsdp.dsl"));
            Assert.Contains("RSD PTR", rsdp);
            Assert.Contains($"{a.Xsdt:X16}", rsdp);
        }
        Assert.Contains("XSDT", Disassemble(iasl!, "xsdt", Table(_mem, a.Xsdt)));
        Assert.Contains("RSDT", Disassemble(iasl!, "rsdt", Table(_mem, a.Rsdt)));
        var facs = Disassemble(iasl!, "facs", _mem.GetSpan(a.Facs, 64).ToArray());
        Assert.Contains("FACS", facs);

        var fadt = Disassemble(iasl!, "facp", Table(_mem, a.Fadt));
        Assert.Contains("PM1A Event Block Address : 00000600", fadt);
        Assert.Contains("PM1A Control Block Address : 00000604", fadt);
        Assert.Contains("PM Timer Block Address : 00000608", fadt);
        Assert.Contains("SCI Interrupt : 0009", fadt);

        var madt = Disassemble(iasl!, "apic", Table(_mem, a.Madt));
        Assert.Equal(2, CountOf(madt, "Processor Local APIC"));
        Assert.Equal(2, CountOf(madt, "Interrupt Source Override"));
        Assert.Contains("Local APIC NMI", madt);
        Assert.Contains("Address : FEC00000", madt);

        Assert.Contains("FED00000", Disassemble(iasl!, "hpet", Table(_mem, a.Hpet)));

        var dsdtBytes = Table(_mem, a.Dsdt);
        var dsdt = Disassemble(iasl!, "dsdt", dsdtBytes);
        Assert.Contains("Name (_S5, Package (0x04)", dsdt);
        Assert.Contains("Scope (_SB)", dsdt);
        Assert.Contains("EisaId (\"PNP0501\")", dsdt);
        Assert.Contains("IO (Decode16,", dsdt);
        Assert.Contains("IRQNoFlags ()", dsdt);

        // Compile the disassembly back: the AML after the header must be ours byte for byte.
        var (exit, output) = Run(iasl!, "-p", Path.Combine(_dir, "recompiled"), Path.Combine(_dir, "dsdt.dsl"));
        Assert.True(exit == 0, $"iasl could not recompile the disassembled DSDT:\n{output}");
        var recompiled = File.ReadAllBytes(Path.Combine(_dir, "recompiled.aml"));
        Assert.Equal(dsdtBytes[36..], recompiled[36..]);
    }

    /// <summary>
    /// ACPICA's interpreter (acpiexec) loads FADT, DSDT, MADT and HPET as a kernel would, without an ACPI
    /// warning or error, and evaluating \_S5_ and a _CRS returns what we encoded.
    /// </summary>
    [SkippableFact]
    public void AcpiexecLoadsTheTablesAndEvaluatesS5()
    {
        var acpiexec = Tool("acpiexec");
        Skip.If(acpiexec is null, "acpiexec is not installed (apt-get install acpica-tools): no ACPICA interpreter to load the tables");
        var a = FirmwareTables.Write(_mem, PlatformDescription.Standard(2, hpet: true)).Acpi;
        var files = new (string Name, ulong At)[] { ("dsdt", a.Dsdt), ("facp", a.Fadt), ("apic", a.Madt), ("hpet", a.Hpet) }
            .Select(t => { var f = Path.Combine(_dir, t.Name + ".dat"); File.WriteAllBytes(f, Table(_mem, t.At)); return f; });
        var (exit, output) = Run(acpiexec!, ["-b", "evaluate \\_S5_; evaluate \\_SB.COM1._CRS", .. files]);
        _output.WriteLine(output);
        Assert.Equal(0, exit);
        Assert.DoesNotMatch("ACPI (Warning|Error|Exception)", output);
        Assert.Contains("Evaluation of \\_S5_ returned object", output);
        Assert.Matches(@"\[Package\] Contains 4 Elements:\s+\[Integer\] = 0000000000000005\s+\[Integer\] = 0000000000000005\s+\[Integer\] = 0000000000000000\s+\[Integer\] = 0000000000000000", output);
        Assert.Contains("47 01 F8 03 F8 03 01 08 22 10 00 79 00", output); // IO 0x3F8/8, IRQ 4, end tag
    }

    private static int CountOf(string text, string what)
    {
        var n = 0;
        for (var i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + what.Length, StringComparison.Ordinal)) n++;
        return n;
    }
}
