using Actorvisor.Actors.Cpu.Lapic;
using Microsoft.Extensions.Time.Testing;
using static Actorvisor.Actors.Cpu.Lapic.LapicRegisters;
using static Actorvisor.Kernel.Messages.InterruptProtocol;

namespace Actorvisor.Actors.Tests.Cpu.Lapic;

/// <summary>The LAPIC model against SDM Vol. 3A chapter 11, with time from a FakeTimeProvider.</summary>
public class LapicTests : IDisposable
{
    private const ulong BusHz = 100_000_000; // 10 ns per bus clock

    private sealed class Output : ILapicOutput
    {
        public readonly List<LapicDeliver> Ipis = new();
        public readonly List<byte> Eois = new();
        public int Nmis, Inits;
        public readonly List<byte> StartUps = new();
        public void SendIpi(LapicDeliver message) => Ipis.Add(message);
        public void BroadcastEoi(byte vector) => Eois.Add(vector);
        public void Nmi() => Nmis++;
        public void Init() => Inits++;
        public void StartUp(byte vector) => StartUps.Add(vector);
    }

    private readonly Output _out = new();
    private readonly FakeTimeProvider _time = new();
    private readonly Actorvisor.Actors.Cpu.Lapic.Lapic _lapic;

    public LapicTests()
    {
        // With a fake clock the timer callback runs inside Advance, on this thread: it may call the model directly.
        _lapic = new Actorvisor.Actors.Cpu.Lapic.Lapic(2, _out, _time, BusHz, g => _lapic!.OnTimerExpired(g));
    }

    public void Dispose() => _lapic.Dispose();

    private void Enable() => _lapic.Write(Svr, 4, 0x1FF); // SVR: APIC software enable, spurious vector FFh

    [Fact]
    public void PowerOnState()
    {
        Assert.Equal(2u << 24, _lapic.Read(Id, 4));
        Assert.Equal(0x0006_0014u, _lapic.Read(LapicRegisters.Version, 4)); // version 14h, max LVT 6 (with CMCI)
        Assert.Equal(0xFFu, _lapic.Read(Svr, 4));                           // software-disabled
        Assert.Equal(0xFFFF_FFFFu, _lapic.Read(Dfr, 4));                    // flat model
        for (var r = LvtTimer; r <= LvtError; r += 0x10) Assert.Equal(LvtMasked, _lapic.Read(r, 4));
        Assert.Equal(LvtMasked, _lapic.Read(LvtCmci, 4));
        _lapic.Write(Esr, 4, 0);
        Assert.Equal(0u, _lapic.Read(Esr, 4));                              // CMCI is a register, not an illegal address
    }

    [Fact]
    public void SoftwareDisabledKeepsLvtsMaskedAndDropsFixedInterrupts()
    {
        _lapic.Write(LvtLint0, 4, 0x700);                  // ExtINT, unmasked
        Assert.Equal(0x1_0700u, _lapic.Read(LvtLint0, 4)); // the mask stays set
        _lapic.Accept(DeliveryMode.Fixed, 0x40, TriggerMode.Edge);
        Assert.False(_lapic.IrrBit(0x40));
        Enable();
        _lapic.Write(LvtLint0, 4, 0x700);
        Assert.Equal(0x700u, _lapic.Read(LvtLint0, 4));
        _lapic.Write(Svr, 4, 0x0FF);                       // disabling masks every LVT again
        Assert.Equal(0x1_0700u, _lapic.Read(LvtLint0, 4));
    }

    [Fact]
    public void HighestVectorAbovePprIsAcknowledgedAndMovesToIsr()
    {
        Enable();
        _lapic.Accept(DeliveryMode.Fixed, 0x31, TriggerMode.Edge);
        _lapic.Accept(DeliveryMode.Fixed, 0x52, TriggerMode.Edge);
        Assert.Equal(0x52, _lapic.Acknowledge());
        Assert.True(_lapic.IsrBit(0x52));
        Assert.Equal(0x0004_0000u, _lapic.Read(IsrBase + 0x20, 4)); // ISR bits 95:64: vector 52h
        Assert.Equal(0x50u, _lapic.Read(LapicRegisters.Ppr, 4));
        Assert.Equal(-1, _lapic.PendingVector);                    // 31h is a lower class
        _lapic.Accept(DeliveryMode.Fixed, 0x5F, TriggerMode.Edge);
        Assert.Equal(-1, _lapic.PendingVector);                    // same class as the one in service
        _lapic.Accept(DeliveryMode.Fixed, 0x60, TriggerMode.Edge);
        Assert.Equal(0x60, _lapic.Acknowledge());
        _lapic.Write(Eoi, 4, 0);                                   // EOI ends the highest in service: 60h
        Assert.False(_lapic.IsrBit(0x60));
        Assert.True(_lapic.IsrBit(0x52));
        _lapic.Write(Eoi, 4, 0);
        Assert.Equal(0x5F, _lapic.Acknowledge());
    }

    [Fact]
    public void TprHoldsBackItsClassAndBelow()
    {
        Enable();
        _lapic.Write(LapicRegisters.Tpr, 4, 0x45);
        _lapic.Accept(DeliveryMode.Fixed, 0x4F, TriggerMode.Edge);
        Assert.Equal(-1, _lapic.PendingVector);
        Assert.Equal(0x45u, _lapic.Read(LapicRegisters.Ppr, 4));
        _lapic.Write(LapicRegisters.Tpr, 4, 0x30);
        Assert.Equal(0x4F, _lapic.PendingVector);
    }

    [Fact]
    public void EoiOfALevelTriggeredVectorIsBroadcastToTheIoApic()
    {
        Enable();
        _lapic.Accept(DeliveryMode.Fixed, 0x61, TriggerMode.Level);
        Assert.True(_lapic.TmrBit(0x61));
        _lapic.Acknowledge();
        _lapic.Write(Eoi, 4, 0);
        Assert.Equal([(byte)0x61], _out.Eois);
        _lapic.Accept(DeliveryMode.Fixed, 0x62, TriggerMode.Edge);
        _lapic.Acknowledge();
        _lapic.Write(Eoi, 4, 0);
        Assert.Single(_out.Eois); // edge: no broadcast
    }

    [Fact]
    public void IllegalVectorsAreReportedInEsrWhenEsrIsWritten()
    {
        Enable();
        _lapic.Write(LvtError, 4, 0xFE);                    // error LVT: vector FEh, unmasked
        _lapic.Accept(DeliveryMode.Fixed, 0x05, TriggerMode.Edge);
        Assert.False(_lapic.IrrBit(0x05));
        Assert.Equal(0u, _lapic.Read(Esr, 4));              // not visible until ESR is written
        _lapic.Write(Esr, 4, 0);
        Assert.Equal(EsrReceiveIllegalVector, _lapic.Read(Esr, 4));
        Assert.True(_lapic.IrrBit(0xFE));                   // the error interrupt
        _lapic.Write(IcrLow, 4, 0x0000_0003);               // fixed IPI with vector 3
        Assert.Empty(_out.Ipis);
        _lapic.Write(Esr, 4, 0);
        Assert.Equal(EsrSendIllegalVector, _lapic.Read(Esr, 4));
        _lapic.Write(Esr, 4, 0);
        Assert.Equal(0u, _lapic.Read(Esr, 4));              // each write starts afresh
    }

    [Theory]
    [InlineData(LvtTimer, 0x0003_00FFu)]   // vector, mask, periodic
    [InlineData(LvtThermal, 0x0001_07FFu)] // vector, delivery mode, mask
    [InlineData(LvtPmc, 0x0001_07FFu)]
    [InlineData(LvtLint0, 0x0001_A7FFu)]   // + polarity, trigger; no remote IRR, no status
    [InlineData(LvtLint1, 0x0001_A7FFu)]
    [InlineData(LvtError, 0x0001_00FFu)]
    [InlineData(LvtCmci, 0x0001_07FFu)]    // vector, delivery mode, mask
    public void ReservedLvtBitsIgnoreWrites(uint register, uint readBack)
    {
        Enable();
        _lapic.Write(register, 4, 0xFFFF_FFFF);
        Assert.Equal(readBack, _lapic.Read(register, 4));
    }

    [Fact]
    public void ExtIntThroughLint0FollowsTheIntrLevel()
    {
        _lapic.EnterVirtualWireMode();
        Assert.False(_lapic.ExtIntPending);
        _lapic.SetLint(0, true);
        Assert.True(_lapic.ExtIntPending);
        Assert.True(_lapic.HasInterrupt);
        Assert.Equal(-1, _lapic.PendingVector); // ExtINT bypasses IRR: the 8259 supplies the vector
        _lapic.SetLint(0, false);
        Assert.False(_lapic.ExtIntPending);
        _lapic.Write(LvtLint0, 4, 0x1_0700);    // masked
        _lapic.SetLint(0, true);
        Assert.False(_lapic.ExtIntPending);
    }

    [Fact]
    public void Lint1NmiAndFixedLintVectors()
    {
        _lapic.EnterVirtualWireMode();
        _lapic.SetLint(1, true);
        Assert.Equal(1, _out.Nmis);
        _lapic.SetLint(1, true);
        Assert.Equal(1, _out.Nmis); // edge: no new NMI while the pin stays high
        _lapic.Write(LvtLint1, 4, 0x0000_0077); // fixed, vector 77h, edge
        _lapic.SetLint(1, false);
        _lapic.SetLint(1, true);
        Assert.True(_lapic.IrrBit(0x77));
    }

    [Fact]
    public void IcrSendsIpisWithDestinationAndShorthands()
    {
        Enable();
        _lapic.Write(IcrHigh, 4, 0x0100_0000);  // destination 1
        _lapic.Write(IcrLow, 4, 0x0000_4041);   // fixed, vector 41h, physical, assert
        var ipi = Assert.Single(_out.Ipis);
        Assert.Equal(new ApicDestination(1, false, DestinationShorthand.None, 2), ipi.Destination);
        Assert.Equal(0x41, ipi.Vector);
        Assert.Equal(0u, _lapic.Read(IcrLow, 4) & IcrDeliveryStatus); // idle at once
        _lapic.Write(IcrLow, 4, 0x0004_0042);   // shorthand self: accepted here, not sent
        Assert.True(_lapic.IrrBit(0x42));
        Assert.Single(_out.Ipis);
        _lapic.Write(IcrLow, 4, 0x0008_0043);   // all including self: here, and to the others
        Assert.True(_lapic.IrrBit(0x43));
        Assert.Equal(DestinationShorthand.AllExcludingSelf, _out.Ipis[^1].Destination.Shorthand);
        _lapic.Write(IcrLow, 4, 0x000C_0400);   // NMI to all others
        Assert.Equal(DeliveryMode.Nmi, _out.Ipis[^1].Mode);
    }

    [Fact]
    public void IcrSendsInitAssertSipiAndDropsInitDeassert()
    {
        // MP spec B.4 sequence to APIC ID 5: INIT assert (level), INIT de-assert, then STARTUP vector 08h.
        _lapic.Write(IcrHigh, 4, 0x0500_0000);
        _lapic.Write(IcrLow, 4, 0x0000_C500);   // INIT, level-triggered, assert
        _lapic.Write(IcrLow, 4, 0x0000_8500);   // INIT level de-assert: not sent by modern LAPICs
        _lapic.Write(IcrLow, 4, 0x0000_0608);   // STARTUP, vector 08h
        Assert.Equal(2, _out.Ipis.Count);       // sent even while this LAPIC is software-disabled
        Assert.Equal((DeliveryMode.Init, true, (byte)5), (_out.Ipis[0].Mode, _out.Ipis[0].Level, _out.Ipis[0].Destination.Id));
        Assert.Equal((DeliveryMode.Startup, (byte)8), (_out.Ipis[1].Mode, _out.Ipis[1].Vector));
        Assert.Equal(0, _out.Inits);            // nothing for this LAPIC's own CPU
        Assert.Empty(_out.StartUps);
    }

    [Fact]
    public void ReceivedInitAndStartupGoToTheCpuEvenWhileSoftwareDisabled()
    {
        Assert.False(_lapic.SoftwareEnabled);
        _lapic.Accept(DeliveryMode.Init, 0, TriggerMode.Level);
        _lapic.Accept(DeliveryMode.Startup, 0x9A, TriggerMode.Edge);
        Assert.Equal(1, _out.Inits);
        Assert.Equal([(byte)0x9A], _out.StartUps);
        Assert.False(_lapic.IrrBit(0x9A));      // a SIPI vector is not an interrupt
        Assert.Equal(0, _lapic.IgnoredMessages);
    }

    [Fact]
    public void InitResetKeepsTheApicIdAndResetsTheRest()
    {
        Enable();
        _lapic.Write(Id, 4, 0x0700_0000);
        _lapic.Write(LapicRegisters.Tpr, 4, 0x20);
        _lapic.Write(LvtLint0, 4, 0x700);
        _lapic.Accept(DeliveryMode.Fixed, 0x55, TriggerMode.Edge);
        _lapic.InitReset();
        Assert.Equal(7u << 24, _lapic.Read(Id, 4));         // SDM 11.4.7.3: the APIC ID survives INIT
        Assert.False(_lapic.SoftwareEnabled);
        Assert.Equal(0u, _lapic.Read(LapicRegisters.Tpr, 4));
        Assert.Equal(LvtMasked, _lapic.Read(LvtLint0, 4));
        Assert.False(_lapic.IrrBit(0x55));
        _lapic.Reset();                                     // RESET, unlike INIT, restores the hardware-assigned ID
        Assert.Equal(2u << 24, _lapic.Read(Id, 4));
    }

    [Fact]
    public void IdRegisterHoldsTheApicIdTheTopologyAssigns()
    {
        using var l = new Actorvisor.Actors.Cpu.Lapic.Lapic(3, _out, _time, BusHz, _ => { }, apicId: 9);
        Assert.Equal(9u << 24, l.Read(Id, 4));
        Assert.Equal(9, l.ApicId);
        Assert.Equal(3, l.VcpuId);
    }

    [Fact]
    public void LdrDfrAndIdAreWritableInTheirFieldsOnly()
    {
        _lapic.Write(Ldr, 4, 0xFFFF_FFFF);
        Assert.Equal(0xFF00_0000u, _lapic.Read(Ldr, 4));
        _lapic.Write(Dfr, 4, 0x0000_0000);       // cluster model
        Assert.Equal(0x0FFF_FFFFu, _lapic.Read(Dfr, 4));
        Assert.False(_lapic.FlatModel);
        _lapic.Write(Id, 4, 0x0500_0000);
        Assert.Equal(5, _lapic.ApicId);
    }

    [Theory]
    [InlineData(0x0u, 2)]
    [InlineData(0x1u, 4)]
    [InlineData(0x2u, 8)]
    [InlineData(0x3u, 16)]
    [InlineData(0x8u, 32)]
    [InlineData(0x9u, 64)]
    [InlineData(0xAu, 128)]
    [InlineData(0xBu, 1)]
    public void OneShotTimerCountsBusClocksOverTheDivisor(uint divide, int divisor)
    {
        Enable();
        _lapic.Write(TimerDivide, 4, divide);
        _lapic.Write(LvtTimer, 4, 0x40);               // one-shot, vector 40h
        _lapic.Write(TimerInitialCount, 4, 1000);
        var period = TimeSpan.FromTicks(1000L * divisor * 10 / 100); // 10 ns per clock, 100 ns per tick
        _time.Advance(period / 2);
        Assert.Equal(500u, _lapic.Read(TimerCurrentCount, 4));
        Assert.False(_lapic.IrrBit(0x40));
        _time.Advance(period / 2);
        Assert.True(_lapic.IrrBit(0x40));
        Assert.Equal(0u, _lapic.Read(TimerCurrentCount, 4));
        _time.Advance(period * 3);
        Assert.Equal(1, _lapic.TimerFirings);          // one shot
    }

    [Fact]
    public void PeriodicTimerFiresEveryPeriodAndReloads()
    {
        Enable();
        _lapic.Write(TimerDivide, 4, 0xB);             // divide by 1
        _lapic.Write(LvtTimer, 4, 0x2_0041);           // periodic, vector 41h
        _lapic.Write(TimerInitialCount, 4, 100_000);   // 1 ms
        for (var i = 1; i <= 5; i++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(1));
            Assert.Equal(i, _lapic.TimerFirings);
            Assert.Equal(0x41, _lapic.Acknowledge());
            _lapic.Write(Eoi, 4, 0);
        }
        _time.Advance(TimeSpan.FromMicroseconds(250));
        Assert.Equal(75_000u, _lapic.Read(TimerCurrentCount, 4));
        _lapic.Write(TimerInitialCount, 4, 0);         // a zero initial count stops it
        _time.Advance(TimeSpan.FromMilliseconds(5));
        Assert.Equal(5, _lapic.TimerFirings);
        Assert.Equal(0u, _lapic.Read(TimerCurrentCount, 4));
    }

    [Fact]
    public void MaskedTimerCountsButDoesNotInterrupt()
    {
        Enable();
        _lapic.Write(TimerDivide, 4, 0xB);
        _lapic.Write(LvtTimer, 4, 0x1_0041);           // masked
        _lapic.Write(TimerInitialCount, 4, 100);
        _time.Advance(TimeSpan.FromMicroseconds(2));
        Assert.Equal(1, _lapic.TimerFirings);
        Assert.False(_lapic.IrrBit(0x41));
    }

    [Fact]
    public void RewritingTheInitialCountRestartsTheCountdown()
    {
        Enable();
        _lapic.Write(TimerDivide, 4, 0xB);
        _lapic.Write(LvtTimer, 4, 0x41);
        _lapic.Write(TimerInitialCount, 4, 1000);      // 10 us
        _time.Advance(TimeSpan.FromMicroseconds(8));
        _lapic.Write(TimerInitialCount, 4, 1000);      // restart: the old expiry must not fire
        _time.Advance(TimeSpan.FromMicroseconds(8));
        Assert.Equal(0, _lapic.TimerFirings);
        _time.Advance(TimeSpan.FromMicroseconds(2));
        Assert.Equal(1, _lapic.TimerFirings);
    }

    [Fact]
    public void UnimplementedRegistersSetIllegalRegisterAddress()
    {
        _lapic.Write(0x040, 4, 0);                 // reserved
        _lapic.Write(Esr, 4, 0);
        Assert.Equal(EsrIllegalRegister, _lapic.Read(Esr, 4));
        Assert.Equal(0u, _lapic.Read(0x3F0, 4));   // SELF IPI exists in x2APIC mode only
        _lapic.Write(Esr, 4, 0);
        Assert.Equal(EsrIllegalRegister, _lapic.Read(Esr, 4));
    }

    [Theory]
    [InlineData(0u, DeliveryMode.Fixed)]
    [InlineData(1u, DeliveryMode.LowestPriority)]
    [InlineData(2u, DeliveryMode.Smi)]
    [InlineData(4u, DeliveryMode.Nmi)]
    [InlineData(5u, DeliveryMode.Init)]
    [InlineData(6u, DeliveryMode.Startup)]
    [InlineData(7u, DeliveryMode.ExtInt)]
    public void IcrSendsEveryDeliveryModeWithItsDestinationMode(uint modeBits, DeliveryMode mode)
    {
        Enable();
        _lapic.Write(IcrHigh, 4, 0x0300_0000 | 0x00FF_FFFF); // destination 3; bits 55:32 are reserved
        Assert.Equal(0x0300_0000u, _lapic.Read(IcrHigh, 4));
        _lapic.Write(IcrLow, 4, 0xFFF0_0000 | 0x4000 | 0x800 | (modeBits << 8) | 0x31); // logical, assert; 31:20 reserved
        var ipi = Assert.Single(_out.Ipis);
        Assert.Equal((mode, (byte)0x31, true, (byte)3, true), (ipi.Mode, ipi.Vector, ipi.Destination.Logical, ipi.Destination.Id, ipi.Level));
        Assert.Equal(0u, _lapic.Read(IcrLow, 4) & 0xFFF0_0000);
        Assert.Equal(0, _out.Nmis + _out.Inits);              // nothing for the sender itself
    }

    [Fact]
    public void SendIllegalVectorCoversLowestPriorityButNotNmiOrSipi()
    {
        Enable();
        _lapic.Write(IcrHigh, 4, 0x0100_0000);
        _lapic.Write(IcrLow, 4, 0x0000_010F);                 // lowest priority, vector 0Fh: illegal
        Assert.Empty(_out.Ipis);
        _lapic.Write(IcrLow, 4, 0x0000_0400);                 // NMI: the vector is ignored
        _lapic.Write(IcrLow, 4, 0x0000_0600);                 // STARTUP at page 0 is legal
        Assert.Equal([DeliveryMode.Nmi, DeliveryMode.Startup], _out.Ipis.Select(i => i.Mode));
        _lapic.Write(Esr, 4, 0);
        Assert.Equal(EsrSendIllegalVector, _lapic.Read(Esr, 4));
    }

    [Fact]
    public void SelfShorthandTakesFixedAndNmiAndNothingElse()
    {
        Enable();
        _lapic.Write(IcrLow, 4, 0x0004_0400);                 // self NMI (bhyve delivers it)
        Assert.Equal(1, _out.Nmis);
        _lapic.Write(IcrLow, 4, 0x0004_4500);                 // self INIT: invalid with "self"
        _lapic.Write(IcrLow, 4, 0x0004_0151);                 // self lowest priority: invalid
        Assert.Equal(0, _out.Inits);
        Assert.False(_lapic.IrrBit(0x51));
        Assert.Empty(_out.Ipis);
        _lapic.Write(IcrLow, 4, 0x0008_4500);                 // INIT to all including self: this CPU too
        Assert.Equal(1, _out.Inits);
        Assert.Equal((DeliveryMode.Init, DestinationShorthand.AllExcludingSelf), (_out.Ipis[^1].Mode, _out.Ipis[^1].Destination.Shorthand));
    }

    [Fact]
    public void ReceivedSmiIsIgnoredAndExtIntMessageWaitsForTheIntaCycle()
    {
        Enable();
        _lapic.Accept(DeliveryMode.Smi, 0, TriggerMode.Edge);
        Assert.Equal(1, _lapic.IgnoredMessages);
        Assert.False(_lapic.HasInterrupt);
        Assert.Equal(0, _out.Nmis);
        _lapic.Accept(DeliveryMode.ExtInt, 0, TriggerMode.Edge);
        Assert.True(_lapic.ExtIntPending);                    // the 8259 supplies the vector
        Assert.Equal(-1, _lapic.PendingVector);
        _lapic.ExtIntAcknowledged();
        Assert.False(_lapic.HasInterrupt);
    }

    [Fact]
    public void LowestPriorityIsAcceptedAsFixedAndTmrFollowsTheLastTrigger()
    {
        Enable();
        _lapic.Accept(DeliveryMode.LowestPriority, 0x70, TriggerMode.Level);
        Assert.True(_lapic.IrrBit(0x70) && _lapic.TmrBit(0x70));
        _lapic.Accept(DeliveryMode.LowestPriority, 0x0A, TriggerMode.Edge); // illegal on receipt too
        Assert.False(_lapic.IrrBit(0x0A));
        _lapic.Write(Esr, 4, 0);
        Assert.Equal(EsrReceiveIllegalVector, _lapic.Read(Esr, 4));
        Assert.Equal(0x70, _lapic.Acknowledge());
        _lapic.Write(Eoi, 4, 0);
        Assert.Equal([(byte)0x70], _out.Eois);
        _lapic.Accept(DeliveryMode.Fixed, 0x70, TriggerMode.Edge);          // the same vector as edge: TMR clears
        Assert.False(_lapic.TmrBit(0x70));
    }

    [Fact]
    public void ErrorLvtMaskedOrWithAnIllegalVectorRaisesNothingButEsrStillRecords()
    {
        Enable();
        _lapic.Accept(DeliveryMode.Fixed, 0x01, TriggerMode.Edge);          // error LVT masked (its reset state)
        _lapic.Write(LvtError, 4, 0x0000_0008);                              // unmasked, vector 8: itself illegal
        _lapic.Write(IcrLow, 4, 0x0000_0002);                                // send illegal vector 2
        Assert.False(_lapic.HasInterrupt);
        _lapic.Write(Esr, 4, 0);
        Assert.Equal(EsrReceiveIllegalVector | EsrSendIllegalVector, _lapic.Read(Esr, 4));
        _lapic.Write(Esr, 4, 0xFFFF_FFFF);                                   // the written value does not matter
        Assert.Equal(0u, _lapic.Read(Esr, 4));
    }

    [Fact]
    public void PprTakesTheInServiceClassWithALowNibbleOfZeroWhenItIsAboveTpr()
    {
        Enable();
        _lapic.Write(LapicRegisters.Tpr, 4, 0x2F);
        _lapic.Accept(DeliveryMode.Fixed, 0x3C, TriggerMode.Edge);
        Assert.Equal(0x3C, _lapic.Acknowledge());
        Assert.Equal(0x30u, _lapic.Read(LapicRegisters.Ppr, 4));            // SDM 11.8.3.1: ISRV[7:4], 0
        _lapic.Write(LapicRegisters.Tpr, 4, 0x3A);
        Assert.Equal(0x3Au, _lapic.Read(LapicRegisters.Ppr, 4));            // TPR class equal: PPR = TPR
        _lapic.Write(LapicRegisters.Tpr, 4, 0xFFFF_FF21);                    // bits 31:8 are reserved
        Assert.Equal(0x21u, _lapic.Read(LapicRegisters.Tpr, 4));
    }

    [Fact]
    public void SwitchingTheTimerToPeriodicWhileCountingReloadsAtZero()
    {
        Enable();
        _lapic.Write(TimerDivide, 4, 0xB);                                   // divide by 1: 10 ns per count
        _lapic.Write(LvtTimer, 4, 0x40);                                     // one-shot, vector 40h
        _lapic.Write(TimerInitialCount, 4, 1000);                            // 10 µs
        _lapic.Write(LvtTimer, 4, 0x2_0040);                                 // now periodic
        _time.Advance(TimeSpan.FromMicroseconds(10));
        Assert.True(_lapic.IrrBit(0x40));
        Assert.Equal(1000u, _lapic.Read(TimerCurrentCount, 4));              // reloaded
        _time.Advance(TimeSpan.FromMicroseconds(25));
        Assert.Equal(3, _lapic.TimerFirings);
        Assert.Equal(500u, _lapic.Read(TimerCurrentCount, 4));
    }

    [Fact]
    public void LevelTriggeredFixedLintSetsRemoteIrrUntilTheEoiAndIsTakenAgainIfStillHigh()
    {
        Enable();
        _lapic.Write(LvtLint1, 4, 0x0000_8066);              // fixed, level-triggered, vector 66h
        _lapic.SetLint(1, true);
        Assert.Equal(0x0000_C066u, _lapic.Read(LvtLint1, 4));  // Remote IRR (bit 14) set
        Assert.True(_lapic.TmrBit(0x66));
        Assert.Equal(0x66, _lapic.Acknowledge());
        _lapic.SetLint(1, true);                              // still high: nothing new while Remote IRR is set
        Assert.False(_lapic.IrrBit(0x66));
        _lapic.Write(LvtLint1, 4, 0x0000_8066);              // software cannot clear Remote IRR
        Assert.Equal(0x0000_C066u, _lapic.Read(LvtLint1, 4));
        _lapic.Write(Eoi, 4, 0);
        Assert.True(_lapic.IrrBit(0x66));                     // the line is still high: accepted again
        Assert.Equal(0x66, _lapic.Acknowledge());
        _lapic.SetLint(1, false);
        _lapic.Write(Eoi, 4, 0);
        Assert.Equal(0x0000_8066u, _lapic.Read(LvtLint1, 4)); // Remote IRR cleared by the EOI
        Assert.False(_lapic.HasInterrupt);
        Assert.Equal([(byte)0x66, (byte)0x66], _out.Eois);    // level EOIs are broadcast as well
    }
}
