using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Actorvisor.Actors.Tests.Telemetry;

/// <summary>
/// Debian's Prometheus (/usr/bin/prometheus) as a child process on 127.0.0.1, scraping one target on 127.0.0.1
/// every second into a TSDB in a temporary directory. Dispose kills it and deletes the directory.
/// </summary>
public sealed class PrometheusServer : IDisposable
{
    public const string Binary = "/usr/bin/prometheus";

    /// <summary>Why Prometheus cannot run here, or null.</summary>
    public static string? SkipReason => File.Exists(Binary)
        ? null
        : $"Debian's prometheus is not installed ({Binary}; apt-get install prometheus, which .ci/run does)";

    private readonly Process _process;
    private readonly DirectoryInfo _dir;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private readonly Queue<string> _log = new();

    /// <summary>Prometheus's own HTTP port (its API) on 127.0.0.1.</summary>
    public int Port { get; }

    private PrometheusServer(int target)
    {
        Port = Loopback.FreePort();
        _dir = Directory.CreateTempSubdirectory("actorvisor-prom-");
        var config = Path.Combine(_dir.FullName, "prometheus.yml");
        File.WriteAllText(config, $"""
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            scrape_configs:
              - job_name: actorvisor
                static_configs:
                  - targets: ['127.0.0.1:{target}']
            """);
        _process = Process.Start(new ProcessStartInfo(Binary)
        {
            ArgumentList = { $"--config.file={config}", $"--storage.tsdb.path={Path.Combine(_dir.FullName, "data")}",
                $"--web.listen-address=127.0.0.1:{Port}" },
            RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false,
        })!;
        _process.ErrorDataReceived += (_, e) => Keep(e.Data);
        _process.BeginErrorReadLine();
        _process.OutputDataReceived += (_, e) => Keep(e.Data);
        _process.BeginOutputReadLine();
    }

    /// <summary>Starts Prometheus scraping http://127.0.0.1:<paramref name="target"/>/metrics; the caller disposes it.</summary>
    public static PrometheusServer Start(int target) => new(target);

    /// <summary>The last lines Prometheus logged, for a failure's message.</summary>
    public string Log
    {
        get { lock (_log) return string.Join('\n', _log); }
    }

    private void Keep(string? line)
    {
        if (line is null) return;
        lock (_log)
        {
            _log.Enqueue(line);
            if (_log.Count > 40) _log.Dequeue();
        }
    }

    /// <summary>Waits until Prometheus answers /-/ready; throws if it exits or does not within <paramref name="limit"/>.</summary>
    public async Task WaitReadyAsync(TimeSpan limit)
    {
        var deadline = DateTime.UtcNow + limit;
        while (true)
        {
            if (_process.HasExited) throw new InvalidOperationException($"prometheus exited with status {_process.ExitCode}:\n{Log}");
            try
            {
                using var answer = await _http.GetAsync($"http://127.0.0.1:{Port}/-/ready");
                if (answer.IsSuccessStatusCode) return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                // Not listening yet.
            }
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"prometheus was not ready within {limit}:\n{Log}");
            await Task.Delay(200);
        }
    }

    /// <summary>An instant query: the value of its first series, or null when it has none (yet).</summary>
    public async Task<double?> QueryAsync(string promql)
    {
        using var doc = await GetAsync($"query?query={Uri.EscapeDataString(promql)}");
        var result = doc.RootElement.GetProperty("data").GetProperty("result");
        return result.GetArrayLength() > 0 ? Number(result[0].GetProperty("value")[1].GetString()!) : null;
    }

    /// <summary>A range query from <paramref name="from"/> to <paramref name="to"/>, one point a second: every series it returns.</summary>
    public async Task<IReadOnlyList<PrometheusSeries>> QueryRangeAsync(string promql, DateTimeOffset from, DateTimeOffset to)
    {
        var span = FormattableString.Invariant($"start={from.ToUnixTimeMilliseconds() / 1000.0}&end={to.ToUnixTimeMilliseconds() / 1000.0}&step=1");
        using var doc = await GetAsync($"query_range?query={Uri.EscapeDataString(promql)}&{span}");
        return doc.RootElement.GetProperty("data").GetProperty("result").EnumerateArray().Select(s => new PrometheusSeries(
                s.GetProperty("metric").EnumerateObject().ToDictionary(l => l.Name, l => l.Value.GetString()!),
                s.GetProperty("values").EnumerateArray()
                    .Select(v => (DateTimeOffset.FromUnixTimeMilliseconds((long)(v[0].GetDouble() * 1000)), Number(v[1].GetString()!)))
                    .ToArray()))
            .ToArray();
    }

    private async Task<JsonDocument> GetAsync(string api)
    {
        var doc = JsonDocument.Parse(await _http.GetStringAsync($"http://127.0.0.1:{Port}/api/v1/{api}"));
        if (doc.RootElement.GetProperty("status").GetString() != "success")
            throw new InvalidOperationException($"prometheus answered {doc.RootElement}");
        return doc;
    }

    /// <summary>A sample value as Prometheus writes it (a float, NaN, +Inf or -Inf).</summary>
    private static double Number(string text) => text switch
    {
        "+Inf" => double.PositiveInfinity,
        "-Inf" => double.NegativeInfinity,
        _ => double.Parse(text, CultureInfo.InvariantCulture),
    };

    /// <summary>
    /// Runs <paramref name="run"/> while Prometheus scrapes <paramref name="target"/>, then asks it each query over
    /// the run's span. Never throws for Prometheus's sake (a missing or failing Prometheus is in the recording), so a
    /// shared boot's other assertions stand; Prometheus is killed whatever happens.
    /// </summary>
    public static PrometheusRecording Around(int target, Action run, params string[] queries)
    {
        if (SkipReason is { } skip)
        {
            run();
            return new PrometheusRecording(skip, null, new Dictionary<string, IReadOnlyList<PrometheusSeries>>(), "");
        }
        PrometheusServer? server = null;
        string? error = null;
        try
        {
            server = Start(target);
            server.WaitReadyAsync(TimeSpan.FromSeconds(60)).GetAwaiter().GetResult();
        }
        catch (Exception e)
        {
            error = $"Prometheus did not start: {e.Message}";
        }
        try
        {
            var from = DateTimeOffset.UtcNow;
            run();
            var to = DateTimeOffset.UtcNow;
            var series = new Dictionary<string, IReadOnlyList<PrometheusSeries>>();
            if (error is null)
                try
                {
                    foreach (var q in queries) series[q] = server!.QueryRangeAsync(q, from.AddSeconds(-1), to.AddSeconds(1)).GetAwaiter().GetResult();
                }
                catch (Exception e)
                {
                    error = $"Prometheus's query API failed: {e.Message}";
                }
            return new PrometheusRecording(null, error, series, server?.Log ?? "");
        }
        finally
        {
            server?.Dispose();
        }
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited) _process.Kill();
            _process.WaitForExit(10000);
        }
        catch (InvalidOperationException)
        {
            // It had already gone.
        }
        _process.Dispose();
        _http.Dispose();
        try
        {
            _dir.Delete(true);
        }
        catch (IOException)
        {
            // A file Prometheus still held; the temp directory's cleaner takes it.
        }
    }
}

/// <summary>One series of a range query: its labels and its (time, value) points.</summary>
public sealed record PrometheusSeries(IReadOnlyDictionary<string, string> Labels, IReadOnlyList<(DateTimeOffset At, double Value)> Points)
{
    public double Max => Points.Count == 0 ? double.NaN : Points.Max(p => p.Value);
}

/// <summary>
/// What Prometheus returned for each query after a run (<see cref="PrometheusServer.Around"/>): the series by
/// query, or why there are none: Prometheus not installed (<paramref name="SkipReason"/>) or failing
/// (<paramref name="Error"/>, with its <paramref name="Log"/>).
/// </summary>
public sealed record PrometheusRecording(string? SkipReason, string? Error,
    IReadOnlyDictionary<string, IReadOnlyList<PrometheusSeries>> Series, string Log);
