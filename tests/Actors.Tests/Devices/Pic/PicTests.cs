using Actorvisor.Actors.Devices;
using Actorvisor.Actors.Devices.Pic;

namespace Actorvisor.Actors.Tests.Devices.Pic;

/// <summary>The 8259A pair and ELCR against the Intel 8259A datasheet's programming model.</summary>
public class PicTests
{
    private sealed class Line : IIrqLine
    {
        public bool Level;
        public int Rises;
        public void Set(bool level)
        {
            if (level && !Level) Rises++;
            Level = level;
        }
    }

    private readonly Line _intr = new();
    private readonly Actorvisor.Actors.Devices.Pic.Pic _pic;

    public PicTests() => _pic = new Actorvisor.Actors.Devices.Pic.Pic(_intr);

    /// <summary>The PC BIOS/Linux initialization: master at vector 20h, slave at 28h, cascade on IR2.</summary>
    private void InitPc(byte icw4 = 0x01)
    {
        _pic.Write(0x20, 0x11); // ICW1: edge, cascade, ICW4 needed
        _pic.Write(0x21, 0x20); // ICW2: master vectors 20h-27h
        _pic.Write(0x21, 0x04); // ICW3: slave on IR2
        _pic.Write(0x21, icw4); // ICW4: 8086 mode (+ AEOI if bit 1)
        _pic.Write(0xA0, 0x11); // ICW1
        _pic.Write(0xA1, 0x28); // ICW2: slave vectors 28h-2Fh
        _pic.Write(0xA1, 0x02); // ICW3: slave ID 2
        _pic.Write(0xA1, icw4); // ICW4
        _pic.Write(0x21, 0x00); // OCW1: unmask all
        _pic.Write(0xA1, 0x00);
    }

    [Fact]
    public void IcwSequenceSetsVectorBasesAndClearsTheMask()
    {
        _pic.Write(0x21, 0xFF);
        InitPc();
        Assert.Equal(0x20, _pic.MasterVectorBase);
        Assert.Equal(0x28, _pic.SlaveVectorBase);
        Assert.Equal(0u, _pic.Read(0x21));
        _pic.Write(0x21, 0xFB); // OCW1: only the cascade unmasked
        Assert.Equal(0xFBu, _pic.Read(0x21));
    }

    [Fact]
    public void EdgeRequestIsAcknowledgedWithItsVectorAndMovesFromIrrToIsr()
    {
        InitPc();
        _pic.SetIrq(4, true);
        Assert.True(_intr.Level);
        Assert.Equal(0x10, _pic.MasterIrr);
        Assert.Equal(0x24, _pic.Acknowledge());
        Assert.Equal(0, _pic.MasterIrr);
        Assert.Equal(0x10, _pic.MasterIsr);
        Assert.False(_intr.Level);
        _pic.Write(0x20, 0x20); // OCW2: non-specific EOI
        Assert.Equal(0, _pic.MasterIsr);
        // The line is still high but an edge is needed: no new request.
        Assert.False(_intr.Level);
        _pic.SetIrq(4, false);
        _pic.SetIrq(4, true);
        Assert.True(_intr.Level);
    }

    [Fact]
    public void FixedPriorityIrq0BeatsIrq7AndInServiceBlocksLowerLevels()
    {
        InitPc();
        _pic.SetIrq(7, true);
        _pic.SetIrq(3, true);
        Assert.Equal(0x23, _pic.Acknowledge());
        // IR3 in service: IR7 is lower and must wait; IR1 is higher and interrupts.
        Assert.False(_intr.Level);
        _pic.SetIrq(1, true);
        Assert.True(_intr.Level);
        Assert.Equal(0x21, _pic.Acknowledge());
        _pic.Write(0x20, 0x20); // EOI clears the highest in service: IR1
        Assert.Equal(0x08, _pic.MasterIsr);
        _pic.Write(0x20, 0x63); // OCW2: specific EOI for IR3
        Assert.Equal(0, _pic.MasterIsr);
        Assert.Equal(0x27, _pic.Acknowledge());
    }

    [Fact]
    public void MaskedRequestStaysInIrrUntilUnmasked()
    {
        InitPc();
        _pic.Write(0x21, 0x10); // OCW1: mask IR4
        _pic.SetIrq(4, true);
        Assert.False(_intr.Level);
        _pic.Write(0x20, 0x0A); // OCW3: read IRR
        Assert.Equal(0x10u, _pic.Read(0x20));
        _pic.Write(0x21, 0x00);
        Assert.True(_intr.Level);
    }

    [Fact]
    public void SlaveRequestCascadesThroughIr2AndNeedsTwoEois()
    {
        InitPc();
        _pic.SetIrq(12, true);
        Assert.True(_intr.Level);
        Assert.Equal(0x2C, _pic.Acknowledge());
        Assert.Equal(0x10, _pic.SlaveIsr);
        Assert.Equal(0x04, _pic.MasterIsr); // the cascade level is in service on the master
        _pic.Write(0xA0, 0x20);             // EOI to the slave
        _pic.Write(0x20, 0x20);             // and to the master
        Assert.Equal(0, _pic.SlaveIsr);
        Assert.Equal(0, _pic.MasterIsr);
    }

    [Fact]
    public void RequestThatVanishesBeforeIntaIsSpuriousIrq7WithoutIsr()
    {
        InitPc();
        _pic.Write(0x4D0, 0x20); // ELCR: IRQ5 level-triggered
        _pic.SetIrq(5, true);
        Assert.True(_intr.Level);
        _pic.SetIrq(5, false);   // a level request goes away with its line
        Assert.Equal(0x27, _pic.Acknowledge());
        Assert.Equal(0, _pic.MasterIsr);
        Assert.Equal(1, _pic.Spurious);
    }

    [Fact]
    public void MaskingTheSlaveLevelWithdrawsTheCascadeRequest()
    {
        InitPc();
        _pic.SetIrq(9, true);
        Assert.True(_intr.Level);
        _pic.Write(0xA1, 0x02);  // OCW1 on the slave: mask IRQ9; the slave's INT, and so master IR2, drops
        Assert.False(_intr.Level);
        _pic.Write(0xA1, 0x00);
        Assert.True(_intr.Level);
        Assert.Equal(0x29, _pic.Acknowledge());
    }

    [Fact]
    public void LevelTriggeredPinStaysRequestedWhileHighAndReassertsAfterEoi()
    {
        InitPc();
        _pic.Write(0x4D0, 0x08); // ELCR bit 3: IRQ3 level
        _pic.SetIrq(3, true);
        Assert.Equal(0x23, _pic.Acknowledge());
        Assert.False(_intr.Level);       // in service blocks it
        _pic.Write(0x20, 0x20);          // EOI with the line still high: requested again
        Assert.True(_intr.Level);
        _pic.SetIrq(3, false);
        Assert.False(_intr.Level);
    }

    [Fact]
    public void ElcrKeepsIrq012813EdgeTriggered()
    {
        _pic.Write(0x4D0, 0xFF);
        _pic.Write(0x4D1, 0xFF);
        Assert.Equal(0xF8u, _pic.Read(0x4D0)); // IRQ 0, 1, 2 stay edge
        Assert.Equal(0xDEu, _pic.Read(0x4D1)); // IRQ 8 and 13 stay edge
    }

    [Fact]
    public void AutoEoiLeavesNothingInService()
    {
        InitPc(icw4: 0x03); // ICW4: 8086 mode, AEOI
        _pic.SetIrq(6, true);
        Assert.Equal(0x26, _pic.Acknowledge());
        Assert.Equal(0, _pic.MasterIsr);
    }

    [Fact]
    public void RotateOnEoiMakesTheServicedLevelTheLowest()
    {
        InitPc();
        _pic.SetIrq(1, true);
        _pic.SetIrq(4, true);
        Assert.Equal(0x21, _pic.Acknowledge());
        _pic.Write(0x20, 0xA0); // OCW2: rotate on non-specific EOI: IR1 now lowest, IR2 highest
        _pic.SetIrq(1, false);
        _pic.SetIrq(1, true);   // IR1 requests again but now ranks below IR4
        Assert.Equal(0x24, _pic.Acknowledge());
        _pic.Write(0x20, 0xC7); // OCW2: set priority, IR7 lowest (back to fixed order)
        _pic.Write(0x20, 0x64); // specific EOI IR4
        Assert.Equal(0x21, _pic.Acknowledge());
    }

    [Fact]
    public void ReadIsrWithOcw3AndPollCommand()
    {
        InitPc();
        _pic.SetIrq(5, true);
        _pic.Write(0x20, 0x0C); // OCW3: poll
        Assert.Equal(0x85u, _pic.Read(0x20)); // interrupt on level 5, acknowledged by the read
        _pic.Write(0x20, 0x0B); // OCW3: read ISR
        Assert.Equal(0x20u, _pic.Read(0x20));
        _pic.Write(0x20, 0x0C); // poll with nothing pending
        Assert.Equal(0u, _pic.Read(0x20));
    }

    [Fact]
    public void SpecialMaskModeLetsLowerLevelsInWhileAMaskedLevelIsInService()
    {
        InitPc();
        _pic.SetIrq(3, true);
        Assert.Equal(0x23, _pic.Acknowledge());
        _pic.SetIrq(6, true);
        Assert.False(_intr.Level);
        _pic.Write(0x21, 0x08); // mask IR3 (in service)
        _pic.Write(0x20, 0x68); // OCW3: ESMM|SMM: special mask mode on
        Assert.True(_intr.Level);
        Assert.Equal(0x26, _pic.Acknowledge());
    }

    [Fact]
    public void IntrOutputChangesOnlyOnTransitions()
    {
        InitPc();
        _pic.SetIrq(3, true);
        _pic.SetIrq(4, true);
        Assert.Equal(1, _intr.Rises);
    }

    [Fact]
    public void IrrIsTheDefaultStatusReadAndImrReadsAtTheDataPort()
    {
        InitPc();
        _pic.Write(0x21, 0xF0);                 // OCW1: mask IR4-7
        _pic.SetIrq(1, true);
        _pic.SetIrq(5, true);
        Assert.Equal(0x22u, _pic.Read(0x20));   // IRR, masked requests included (ICW1 selects IRR)
        Assert.Equal(0xF0u, _pic.Read(0x21));   // IMR
        Assert.Equal(0x21, _pic.Acknowledge());
        _pic.Write(0x20, 0x0B);                 // OCW3: read ISR
        Assert.Equal(0x02u, _pic.Read(0x20));
        Assert.Equal(0x02u, _pic.Read(0x20));   // the selection stays until changed
        _pic.Write(0x20, 0x0A);                 // OCW3: read IRR
        Assert.Equal(0x20u, _pic.Read(0x20));   // the edge request of IR1 was consumed by the INTA
        _pic.Write(0x20, 0x0B);
        _pic.Write(0x20, 0x08);                 // OCW3 with RR = 0: no change of the selection
        Assert.Equal(0x02u, _pic.Read(0x20));
        _pic.Write(0x20, 0x11);                 // ICW1 again: IMR cleared, status read back to IRR
        Assert.Equal(0u, _pic.Read(0x21));
        Assert.Equal(0x00u, _pic.Read(0x20));   // and the edge latches reset
    }

    [Fact]
    public void RotateInAutoEoiModeMakesEachServicedLevelTheLowest()
    {
        InitPc(icw4: 0x03);                     // AEOI
        _pic.Write(0x20, 0x80);                 // OCW2: set rotate in automatic EOI mode
        _pic.SetIrq(1, true);
        _pic.SetIrq(4, true);
        Assert.Equal(0x21, _pic.Acknowledge());
        _pic.SetIrq(1, false);
        _pic.SetIrq(1, true);
        Assert.Equal(0x24, _pic.Acknowledge()); // IR1 is now the lowest: IR4 goes first
        Assert.Equal(0x21, _pic.Acknowledge());
        Assert.Equal(0, _pic.MasterIsr);
        _pic.Write(0x20, 0x00);                 // OCW2: clear rotate in AEOI; IR1 stays lowest until rotated again
        _pic.SetIrq(1, false); _pic.SetIrq(1, true);
        _pic.SetIrq(0, true);
        Assert.Equal(0x20, _pic.Acknowledge()); // IR2 is highest now, IR0 next: IR0 before IR1
        Assert.Equal(0x21, _pic.Acknowledge());
    }

    [Fact]
    public void NonSpecificEoiInSpecialMaskModeSkipsMaskedLevelsAndLeavingItRestoresNesting()
    {
        InitPc();
        _pic.SetIrq(3, true);
        Assert.Equal(0x23, _pic.Acknowledge());
        _pic.Write(0x21, 0x08);                 // mask IR3, in service
        _pic.Write(0x20, 0x68);                 // special mask mode on
        _pic.SetIrq(6, true);
        Assert.Equal(0x26, _pic.Acknowledge());
        Assert.Equal(0x48, _pic.MasterIsr);
        _pic.Write(0x20, 0x20);                 // non-specific EOI: ends IR6, not the masked IR3
        Assert.Equal(0x08, _pic.MasterIsr);
        _pic.Write(0x20, 0x48);                 // special mask mode off
        _pic.SetIrq(5, true);
        _pic.Write(0x21, 0x00);
        Assert.False(_intr.Level);              // IR3 in service holds back IR5 again
        _pic.Write(0x20, 0x20);                 // ends IR3
        Assert.True(_intr.Level);
        Assert.Equal(0x25, _pic.Acknowledge());
    }

    [Theory]
    [InlineData(0x01, false)]                   // fully nested: the cascade in service blocks the slave
    [InlineData(0x11, true)]                    // ICW4.SFNM on the master: a higher slave level gets through
    public void SpecialFullyNestedModeLetsAHigherSlaveLevelInterruptTheSlaveInService(byte icw4, bool nested)
    {
        InitPc(icw4);
        _pic.SetIrq(12, true);
        Assert.Equal(0x2C, _pic.Acknowledge());
        Assert.Equal(0x04, _pic.MasterIsr);     // the cascade level is in service on the master
        _pic.SetIrq(9, true);                   // slave IR1: above IR4 on the slave
        Assert.Equal(nested, _intr.Level);
        if (nested) Assert.Equal(0x29, _pic.Acknowledge());
    }

    [Fact]
    public void Icw1LtimMakesEveryPinOfTheChipLevelSensitive()
    {
        _pic.Write(0x20, 0x19);                 // ICW1: LTIM, cascade, ICW4 needed
        _pic.Write(0x21, 0x20);
        _pic.Write(0x21, 0x04);
        _pic.Write(0x21, 0x01);
        _pic.Write(0x21, 0x00);
        _pic.SetIrq(3, true);
        Assert.Equal(0x23, _pic.Acknowledge());
        _pic.Write(0x20, 0x20);
        Assert.True(_intr.Level);               // still high after the EOI: requested again
        _pic.SetIrq(3, false);
        Assert.False(_intr.Level);              // and the request follows the line down
    }
}
