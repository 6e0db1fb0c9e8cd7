using System.CommandLine;
using Actorvisor.Host.Vm;

namespace Actorvisor.Host.Telemetry;

/// <summary><c>actorvisor trace summarize PATH</c>: a JSON-lines trace file as tables.</summary>
internal static class TraceCommands
{
    public static Command Build(Stream stdout, TextWriter stderr)
    {
        var path = new Argument<FileInfo>("PATH") { Description = "A trace file written with --trace-file" };
        var top = new Option<int>("--top") { Description = "How many talkers to list", DefaultValueFactory = _ => 20 };
        var summarize = new Command("summarize", "Top talkers and interrupt latency percentiles (p50/p90/p99/max) per GSI and vector") { path, top };
        summarize.SetAction(parse =>
        {
            var file = parse.GetValue(path)!;
            if (!file.Exists)
            {
                stderr.WriteLine($"actorvisor: no such file: {file.FullName}");
                return (int)VmExitCode.Error;
            }
            try
            {
                var text = TraceSummary.Read(file.FullName).Format(parse.GetValue(top));
                using var w = new StreamWriter(stdout, leaveOpen: true);
                w.Write(text);
                return 0;
            }
            catch (InvalidDataException e)
            {
                stderr.WriteLine($"actorvisor: {e.Message}");
                return (int)VmExitCode.Error;
            }
        });
        return new Command("trace", "Trace files written by 'actorvisor run --trace-file'") { summarize };
    }
}
