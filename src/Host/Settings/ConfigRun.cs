using Actorvisor.Actors.Cpu;
using Actorvisor.Host.Guest;
using Actorvisor.Host.Vm;

namespace Actorvisor.Host.Settings;

/// <summary>
/// `actorvisor run --config FILE`: every VM of the file, with the command line's flags laid over each, run
/// together by <see cref="VmHost"/>. With several VMs each ends on its own; the process exits with the
/// highest of their statuses (bhyve's codes: any error shows as 4), and each VM's end is reported on stderr
/// with its name.
/// </summary>
public static class ConfigRun
{
    public static int Run(string path, VmSettings flags, Stream stdout, TextWriter stderr, ConsoleInput? stdin, bool stats, string? runDir)
    {
        IReadOnlyList<VmSettings> file;
        try
        {
            file = VmConfigFile.Load(path);
        }
        catch (ConfigFileException e)
        {
            stderr.WriteLine($"actorvisor: {e.Message}");
            return (int)VmExitCode.Error;
        }
        if (file.Count > 1 && flags.Name is not null)
            return Fail(stderr, $"--name cannot name the {file.Count} VMs of {path}; set 'name' in the file");
        var vms = file.Select(v => v.OverriddenBy(flags)).ToArray();
        if (vms.Count(v => v.SerialOrDefault == "stdio") > 1)
            return Fail(stderr, $"{path}: only one VM can use the terminal (serial: stdio); give the others 'serial: file:PATH'");

        var files = new List<FileStream>();
        try
        {
            GuestFiles? guest = null;
            var configs = new List<VmConfig>();
            foreach (var v in vms)
            {
                var kernel = v.Kernel;
                var initrd = v.Initrd;
                var cmdline = v.Cmdline;
                if (kernel is null)
                {
                    if (initrd is not null) return Fail(stderr, $"VM '{v.Name ?? VmConfig.DefaultName}': initrd needs kernel (the default guest brings its own initramfs)");
                    guest ??= new DebianGuest(stderr).Ensure();
                    (kernel, initrd) = (guest.Kernel, guest.Initramfs);
                    cmdline ??= GuestFiles.DefaultCmdline;
                }
                FileStream? serialFile = null;
                if (v.SerialOrDefault.StartsWith("file:", StringComparison.Ordinal))
                {
                    serialFile = new FileStream(v.SerialOrDefault[5..], FileMode.Create, FileAccess.Write, FileShare.Read);
                    files.Add(serialFile);
                }
                configs.Add(new VmConfig(v.Name ?? VmConfig.DefaultName, v.Memory ?? VmConfig.DefaultMemorySize, kernel, serialFile ?? stdout)
                {
                    Cmdline = cmdline,
                    InitrdPath = initrd,
                    Modules = (v.Modules ?? []).Select(m => m.IndexOf(',') is var c and >= 0 ? (m[..c], (string?)m[(c + 1)..]) : (m, null)).ToArray(),
                    Devices = v.Devices ?? [],
                    NoReboot = v.NoReboot ?? false,
                    Topology = v.Cpus ?? Actorvisor.Kernel.Cpu.CpuTopology.Single,
                    Input = serialFile is null ? stdin : null,
                    Supervision = v.Supervision ?? DeviceSupervision.Default,
                });
            }
            using var raw = configs.Any(c => c.Input is { IsTerminal: true }) ? TerminalRawMode.EnterOnStdin() : null;
            var totals = new VcpuTotals();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var outcomes = VmHost.RunAll(configs, stderr, totals, runDir, defaultNamed: vms.Length == 1 && vms[0].Name is null);
            raw?.Dispose();
            foreach (var o in outcomes)
            {
                if (configs.Count == 1)
                {
                    if (o.Message is { } message) stderr.WriteLine($"actorvisor: {message}");
                }
                else stderr.WriteLine($"actorvisor: vm {o.Vm}: {o.Message ?? o.Code.ToString()} (status {o.ExitStatus})");
            }
            if (stats) stderr.WriteLine(RunStatistics.Format(totals, clock.Elapsed));
            return VmHost.ExitStatus(outcomes);
        }
        finally
        {
            foreach (var f in files) f.Dispose();
        }
    }

    private static int Fail(TextWriter stderr, string message)
    {
        stderr.WriteLine($"actorvisor: {message}");
        return (int)VmExitCode.Error;
    }
}
