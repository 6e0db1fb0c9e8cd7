using Actorvisor.Host.Faults;
using Actorvisor.Kernel.Faults;

namespace Actorvisor.Actors.Tests.Faults;

public class FaultScenarioTests
{
    [Fact]
    public void AScenarioFileGivesTheSeedAndTheRules()
    {
        var s = FaultScenario.Parse("""
            seed: 99
            rules:
              - name: lose-half-the-ticks
                gsi: 0
                action: drop
                every: 2
              - name: slow-rtc-writes
                device: rtc
                kind: pio.write
                address: 0x70-0x71
                action: delay
                delay: 250us
                after: 3
                limit: 5
                from: 1s
                to: 2.5s
              - name: flip
                kind: mmio.read
                device: hpet
                action: corrupt
                random-bit: true
                probability: 0.25
                in-state: start
                to-state: flipped
            """);
        Assert.Equal(99UL, s.Seed);
        Assert.Equal(3, s.Rules.Count);
        var (a, b, c) = (s.Rules[0], s.Rules[1], s.Rules[2]);
        Assert.Equal(new FaultTarget(null, FaultKind.Irq, 0, 0), a.Target);
        Assert.Equal(2, a.Trigger.Every);
        Assert.Equal(new FaultTarget("rtc", FaultKind.PioWrite, 0x70, 0x71), b.Target);
        Assert.Equal(TimeSpan.FromMicroseconds(250), b.Action.Delay);
        Assert.Equal(new FaultTrigger(After: 3, Limit: 5, WindowFrom: TimeSpan.FromSeconds(1), WindowTo: TimeSpan.FromSeconds(2.5)), b.Trigger);
        Assert.True(c.Action is { Verdict: FaultVerdict.Corrupt, RandomBit: true });
        Assert.Equal((0.25, "start", "flipped"), (c.Trigger.Probability, c.InState, c.ToState));
    }

    [Theory]
    [InlineData("rules:\n  - name: x\n    action: drop\n    colour: red", "unknown key 'colour'")]
    [InlineData("rules:\n  - name: x\n    action: explode", "action 'explode' is not one of")]
    [InlineData("rules:\n  - name: x\n    kind: disk\n    action: drop", "kind 'disk' is not one of")]
    [InlineData("rules:\n  - name: x\n    action: drop\n    probability: 2", "probability 2 is not between 0 and 1")]
    [InlineData("rules:\n  - name: x\n    action: delay\n    delay: 5 minutes", "is not a duration")]
    [InlineData("rules:\n  - name: x\n    action: delay", "action delay needs 'delay'")]
    [InlineData("rules:\n  - name: x\n    kind: pio.read\n    action: delay\n    delay: 1ms", "a read cannot be delayed")]
    [InlineData("rules:\n  - action: drop", "a rule needs a name")]
    [InlineData("rules:\n  - name: x\n    action: drop\n  - name: x\n    action: drop", "two rules are named 'x'")]
    [InlineData("rules:\n  - name: x\n    address: 0x80-0x70\n    action: drop", "range 0x80-0x70 is empty")]
    [InlineData("colour: red", "unknown key 'colour'")]
    [InlineData("rules: [a, b", "not YAML")]
    public void BadScenariosAreRejectedWithWhatIsWrong(string yaml, string message)
    {
        var e = Assert.Throws<FormatException>(() => FaultScenario.Parse(yaml, "test.yaml"));
        Assert.Contains(message, e.Message);
        Assert.StartsWith("test.yaml", e.Message);
    }

    [Fact]
    public void EveryExampleFileParsesAndItsRuleMapsGiveTheSameRulesAsTheFile()
    {
        var files = Directory.GetFiles(Actorvisor.Actors.Tests.Host.LinuxFaultsFixture.Examples, "*.yaml");
        Assert.NotEmpty(files);
        foreach (var file in files)
        {
            var yaml = File.ReadAllText(file);
            var rules = FaultScenario.Parse(yaml, file).Rules;
            var fromMaps = FaultScenario.RuleMaps(yaml, file).Select(m => FaultScenario.ParseRule(m, "faults add")).ToArray();
            Assert.Equal(rules, fromMaps);
        }
    }

    [Fact]
    public void SeveralFilesAreOneScenarioWithTheFirstSeedAndUniqueNames()
    {
        var dir = Directory.CreateTempSubdirectory("faults-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "a.yaml"), "rules:\n  - {name: a, gsi: 8, action: drop}\n");
            File.WriteAllText(Path.Combine(dir, "b.yaml"), "seed: 5\nrules:\n  - {name: b, gsi: 9, action: storm}\n");
            File.WriteAllText(Path.Combine(dir, "c.yaml"), "seed: 6\nrules:\n  - {name: a, gsi: 4, action: drop}\n");
            var s = FaultScenario.LoadAll([Path.Combine(dir, "a.yaml"), Path.Combine(dir, "b.yaml")]);
            Assert.Equal(5UL, s.Seed);
            Assert.Equal(["a", "b"], s.Rules.Select(r => r.Name));
            Assert.Equal(FaultVerdict.Storm, s.Rules[1].Action.Verdict);
            var e = Assert.Throws<FormatException>(() => FaultScenario.LoadAll([Path.Combine(dir, "a.yaml"), Path.Combine(dir, "c.yaml")]));
            Assert.Contains("two rules are named 'a'", e.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData(new[] { "uart-0=restart", "*=escalate" }, "uart-0", "Restart")]
    [InlineData(new[] { "uart-0=restart", "*=escalate" }, "pit", "Escalate")]
    [InlineData(new string[0], "uart-0", "Stop")]
    public void SuperviseFlagsGiveThePolicies(string[] items, string device, string policy)
    {
        Assert.True(Actorvisor.Host.Vm.DeviceSupervision.TryParse(items, out var s, out var error), error);
        Assert.Equal(policy, s.For(device).ToString());
    }

    [Fact]
    public void ABadSuperviseFlagSaysWhatIsExpected()
    {
        Assert.False(Actorvisor.Host.Vm.DeviceSupervision.TryParse(["uart-0=reboot"], out _, out var error));
        Assert.Contains("--supervise 'uart-0=reboot'", error);
        Assert.Contains("stop, resume, restart, restart-power-on, escalate", error);
    }
}
