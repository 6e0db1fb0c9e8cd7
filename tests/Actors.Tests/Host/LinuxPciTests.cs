using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace Actorvisor.Actors.Tests.Host;

/// <summary>
/// Debian's kernel on our PCI bus (the <see cref="LinuxBootFixture"/> boot, with a virtio function in slot 3): it
/// finds the bus through ACPI, enumerates the host bridge, the LPC bridge and the virtio function with their IDs
/// and classes, logs no PCI error, and its virtio_pci driver binds to the function.
/// </summary>
[Collection(GuestBoot.Collection)]
public class LinuxPciTests(LinuxBootFixture fixture, ITestOutputHelper output)
{
    private GuestBootResult RequireBoot()
    {
        Skip.If(fixture.SkipReason is not null, fixture.SkipReason);
        var r = fixture.Result!;
        foreach (var l in r.Lines.Where(l => l.Line.StartsWith("PCIDEV:") || l.Line.StartsWith("VIRTIODEV:") || Regex.IsMatch(l.Line, "(?i)pci|virtio")))
            output.WriteLine(l.Line);
        return r;
    }

    /// <summary>PCIDEV: lines: address, vendor, device, class, irq, driver.</summary>
    private static Dictionary<string, string[]> Functions(GuestBootResult boot) =>
        boot.Lines.Where(l => l.Line.StartsWith("PCIDEV: ", StringComparison.Ordinal))
            .Select(l => l.Line["PCIDEV: ".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .ToDictionary(f => f[0], f => f[1..]);

    [SkippableFact]
    public void TheGuestEnumeratesTheHostBridgeTheLpcBridgeAndTheVirtioFunction()
    {
        var boot = RequireBoot();
        Assert.Contains("ACPI: PCI Root Bridge [PCI0] (domain 0000 [bus 00])", boot.Console);
        var f = Functions(boot);
        Assert.Equal(["0x8086", "0x29c0", "0x060000"], f["0000:00:00.0"][..3]);
        Assert.Equal(["0x8086", "0x2918", "0x060100"], f["0000:00:1f.0"][..3]);
        var virtio = $"0000:00:{LinuxBootFixture.VirtioSlot:x2}.0";
        Assert.Equal(["0x1af4", "0x1044", "0xff0000"], f[virtio][..3]);
        Assert.Equal(3, f.Count);
    }

    [SkippableFact]
    public void VirtioPciBindsAndTheVirtioDeviceAppearsOnTheVirtioBus()
    {
        var boot = RequireBoot();
        var virtio = Functions(boot)[$"0000:00:{LinuxBootFixture.VirtioSlot:x2}.0"];
        Assert.Equal("virtio-pci", virtio[4]);
        // The virtio core read our IDs through the common configuration: vendor 1AF4 (the subsystem vendor), device 4.
        Assert.Matches(@"VIRTIODEV: virtio0 0x1af4 0x0004 0x0000000[0-9a-f]", boot.Console);
        // The BARs sit where the firmware placed them, inside the host bridge's windows.
        Assert.Matches(@"pci 0000:00:03.0: BAR 1 \[mem 0xc0000000-0xc0000fff\]", boot.Console);
        Assert.Matches(@"pci 0000:00:03.0: BAR 4 \[mem 0x1000000000-0x1000003fff 64bit pref\]", boot.Console);
    }

    [SkippableFact]
    public void TheKernelLogsNoPciError()
    {
        var boot = RequireBoot();
        var start = boot.Console.IndexOf("PCI-KMSG:", StringComparison.Ordinal);
        var end = boot.Console.IndexOf("END-PCI-KMSG", StringComparison.Ordinal);
        Assert.True(start >= 0 && end > start, "the /init did not print its PCI log section");
        var errors = boot.Console[(start + "PCI-KMSG:".Length)..end].Trim();
        Assert.True(errors.Length == 0, $"PCI errors in the kernel log:\n{errors}");
        Assert.Contains("PCI: Using configuration type 1 for base access", boot.Console);
        Assert.DoesNotContain("can't claim BAR", boot.Console);
    }
}
