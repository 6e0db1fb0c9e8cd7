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
    public static int Run(string path, VmSettings flags, Stream stdout, TextWriter stderr, ConsoleInput? stdin, bool stats, string? runDir) =>
        Run(path, flags, new ProcessSettings { Stats = stats ? true : null, RunDir = runDir }, stdout, stderr, stdin);

    /// <param name="processFlags">The process-wide flags given on the command line (null values: not given).</param>
    public static int Run(string path, VmSettings flags, ProcessSettings processFlags, Stream stdout, TextWriter stderr, ConsoleInput? stdin)
    {
        IReadOnlyList<VmSettings> file;
        ProcessSettings process;
        try
        {
            var config = VmConfigFile.LoadFile(path);
            (file, process) = (config.Vms, config.Process.OverriddenBy(processFlags));
        }
        catch (ConfigFileException e)
        {
            stderr.WriteLine($"actorvisor: {e.Message}");
            return (int)VmExitCode.Error;
        }
        if (process.Telemetry(out var telemetryError) is not { } telemetryOptions) return Fail(stderr, $"{path}: {telemetryError}");
        var stats = process.Stats ?? false;
        var runDir = process.RunDir;
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
                if (Machine(v, out var machineError) is not { } machine) return Fail(stderr, $"VM '{v.Name ?? VmConfig.DefaultName}': {machineError}");
                configs.Add(new VmConfig(v.Name ?? VmConfig.DefaultName, v.Memory ?? VmConfig.DefaultMemorySize, kernel, serialFile ?? stdout)
                {
                    PciDevices = machine.Pci,
                    Deterministic = machine.Deterministic,
                    Faults = machine.Faults,
                    FaultSeed = v.FaultSeed,
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
            using var telemetrySession = telemetryOptions.Any ? Actorvisor.Host.Telemetry.TelemetrySession.Start(telemetryOptions) : null;
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

    /// <summary>What one VM's PCI, deterministic and fault keys build, checked as `run` checks the flags.</summary>
    public sealed record MachineParts(IReadOnlyList<PciDeviceSpec> Pci, DeterministicRun? Deterministic, Actorvisor.Host.Faults.FaultScenario? Faults);

    public static MachineParts? Machine(VmSettings v, out string? error)
    {
        if (PciOptions.Resolve(v.Slots, v.Disks, v.Rng ?? false, v.Nets, out error) is not { } pci) return null;
        if (v.Record is not null && v.Replay is not null)
        {
            error = "record and replay exclude each other";
            return null;
        }
        if (v.Replay is { } replay && !File.Exists(replay))
        {
            error = $"replay {replay}: no such file";
            return null;
        }
        var deterministic = v.Deterministic == true || v.Record is not null || v.Replay is not null
            ? new DeterministicRun(DeterministicRun.DefaultEpoch, v.Record, v.Replay)
            : null;
        Actorvisor.Host.Faults.FaultScenario? faults = null;
        if (v.Faults is { Length: > 0 } faultsPaths)
        {
            try
            {
                faults = Actorvisor.Host.Faults.FaultScenario.LoadAll(faultsPaths);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or ArgumentException)
            {
                error = $"faults {string.Join(", ", faultsPaths)}: {e.Message}";
                return null;
            }
        }
        return new MachineParts(pci, deterministic, faults);
    }

    private static int Fail(TextWriter stderr, string message)
    {
        stderr.WriteLine($"actorvisor: {message}");
        return (int)VmExitCode.Error;
    }
}
