namespace Actorvisor.Host.Vm;

/// <summary>What the VM supervisor does when a device actor throws (DESIGN.md, "Faults and supervision").</summary>
public enum DevicePolicy
{
    /// <summary>The VM ends with status 4 and the failure as its message (the default: nothing is hidden).</summary>
    Stop,
    /// <summary>The device keeps its registers and goes on; the message it failed on is lost.</summary>
    Resume,
    /// <summary>
    /// The device is built again and comes back with the registers it had before the message it failed on (its
    /// last consistent state), its interrupt lines driven to that state's levels. Devices that cannot save their
    /// registers (all but the UART, RTC and PIT) restart from power-on state.
    /// </summary>
    Restart,
    /// <summary>The device is built again from power-on registers (the RTC keeps its battery-backed CMOS); its lines are re-driven.</summary>
    RestartPowerOn,
    /// <summary>The VM is suspended and a state dump written; the device is kept as it was, so `ctl resume` goes on.</summary>
    Escalate,
}

/// <summary>
/// Per-device supervision policies, by child actor name: an exact name (<c>uart-0</c>), a prefix with
/// <c>*</c> (<c>uart-*</c>), or <c>*</c> for every device; the most specific wins. vCPUs are not devices:
/// a vCPU that fails always ends the VM.
/// </summary>
public sealed record DeviceSupervision(IReadOnlyDictionary<string, DevicePolicy> Policies)
{
    public static readonly DeviceSupervision Default = new(new Dictionary<string, DevicePolicy>());

    public DevicePolicy For(string device)
    {
        if (Policies.TryGetValue(device, out var exact)) return exact;
        var best = -1;
        var policy = DevicePolicy.Stop;
        foreach (var (pattern, p) in Policies)
        {
            if (!pattern.EndsWith('*')) continue;
            var prefix = pattern[..^1];
            if (device.StartsWith(prefix, StringComparison.Ordinal) && prefix.Length > best)
            {
                best = prefix.Length;
                policy = p;
            }
        }
        return policy;
    }

    /// <summary>The policies by their names in config files and `stats`.</summary>
    public static readonly IReadOnlyDictionary<string, DevicePolicy> Names = new Dictionary<string, DevicePolicy>(StringComparer.OrdinalIgnoreCase)
    {
        ["stop"] = DevicePolicy.Stop, ["resume"] = DevicePolicy.Resume, ["restart"] = DevicePolicy.Restart,
        ["restart-power-on"] = DevicePolicy.RestartPowerOn, ["escalate"] = DevicePolicy.Escalate,
    };

    public static bool TryParsePolicy(string text, out DevicePolicy policy) => Names.TryGetValue(text, out policy);

    public static string NameOf(DevicePolicy policy) => Names.First(kv => kv.Value == policy).Key;

    /// <summary>Policies from <c>DEVICE=POLICY</c> items (<c>--supervise uart-0=restart</c>).</summary>
    public static bool TryParse(IEnumerable<string> items, out DeviceSupervision supervision, out string? error)
    {
        var policies = new Dictionary<string, DevicePolicy>();
        supervision = Default;
        error = null;
        foreach (var item in items)
        {
            var eq = item.IndexOf('=');
            if (eq <= 0 || !TryParsePolicy(item[(eq + 1)..], out var policy))
            {
                error = $"--supervise '{item}': expected DEVICE=POLICY with POLICY one of stop, resume, restart, restart-power-on, escalate";
                return false;
            }
            policies[item[..eq]] = policy;
        }
        supervision = new DeviceSupervision(policies);
        return true;
    }
}
