using System.Diagnostics;
using Actorvisor.Kernel.Messages;
using Actorvisor.Kernel.Telemetry;
using static Actorvisor.Kernel.Messages.InterruptProtocol;

namespace Actorvisor.Actors.Cpu.Lapic;

/// <summary>
/// The LAPIC's part of an interrupt's trace, on the vCPU thread: the context of each traced vector while it
/// waits in IRR, then while it is in service, so the injection and the guest's EOI join the trace the device
/// started. An ExtINT's context waits on LINT0 until the 8259's INTA gives the vector; the 8259's own EOI is
/// a port write not attributed to a vector, so its trace ends at injection. The arrays appear with the first
/// traced interrupt; untraced interrupts only test <see cref="Tracing"/>.
/// </summary>
internal sealed class LapicTelemetry(int vcpuId)
{
    private ActivityContext[]? _pending, _inService;
    private ActivityContext _extInt;
    private int _count;
    /// <summary>Raise times of untraced pending interrupts (per vector; the ExtINT's apart), for the latency histogram.</summary>
    private long[]? _raisedAt;
    private long _extIntRaisedAt;
    private int _stamped;

    /// <summary>Where the counts go (the vCPU's, once the vCPU actor attached it).</summary>
    public VcpuMetrics Metrics { get; set; } = VcpuMetrics.Detached;

    /// <summary>Some traced interrupt is pending or in service: the slow paths have work.</summary>
    public bool Tracing => _count > 0;

    public void Accepted(LapicDeliver d, Lapic model)
    {
        if (d.Mode == DeliveryMode.ExtInt)
        {
            SetExtInt(d.Trace);
            return;
        }
        if (d.Mode is not (DeliveryMode.Fixed or DeliveryMode.LowestPriority) || !model.IrrBit(d.Vector))
        {
            InterruptTrace.End(d.Trace); // dropped (disabled LAPIC, illegal vector) or not a vectored interrupt
            return;
        }
        _pending ??= new ActivityContext[256];
        _inService ??= new ActivityContext[256];
        // A second message for a vector already in IRR merges with it: the first trace goes on, this one ends.
        if (_pending[d.Vector] != default) InterruptTrace.End(d.Trace);
        else
        {
            _pending[d.Vector] = d.Trace;
            _count++;
        }
        InterruptTrace.Accept(d.Trace, Metrics.Vm, vcpuId, d.Vector, d.Trigger == TriggerMode.Level ? "level" : "edge");
    }

    /// <summary>An untraced interrupt with a raise time was accepted: keep the time until the vector is taken.</summary>
    public void Stamped(LapicDeliver d, Lapic model)
    {
        if (d.Mode == DeliveryMode.ExtInt)
        {
            LintStamped(d.Raised);
            return;
        }
        if (d.Mode is not (DeliveryMode.Fixed or DeliveryMode.LowestPriority) || !model.IrrBit(d.Vector)) return;
        _raisedAt ??= new long[256];
        // A second message for a vector already in IRR merges with it: the first raise is the one that waits.
        if (_raisedAt[d.Vector] != 0) return;
        _raisedAt[d.Vector] = d.Raised;
        _stamped++;
    }

    public void LintStamped(long raised)
    {
        if (_extIntRaisedAt != 0) return;
        _extIntRaisedAt = raised;
        _stamped++;
    }

    /// <summary>INTR fell before an INTA took it: that raise time is void.</summary>
    public void LintLowered()
    {
        if (_extIntRaisedAt == 0) return;
        _extIntRaisedAt = 0;
        _stamped--;
    }

    public void LintRaised(ActivityContext trace)
    {
        SetExtInt(trace);
        InterruptTrace.Accept(trace, Metrics.Vm, vcpuId, -1, "extint");
    }

    private void SetExtInt(ActivityContext trace)
    {
        if (_extInt != default) InterruptTrace.End(_extInt);
        else _count++;
        _extInt = trace;
    }

    /// <summary>The CPU took <paramref name="vector"/> (from IRR, or from the 8259 when <paramref name="extInt"/>).</summary>
    public void Taken(int vector, bool extInt)
    {
        Metrics.Vectors[vector]++;
        Metrics.Exits[(int)ExitReason.Interrupt]++;
        if (_stamped != 0) TakenStamped(vector, extInt);
        if (_count == 0) return;
        if (extInt)
        {
            if (_extInt == default) return;
            InterruptTrace.Inject(_extInt, Metrics.Vm, vcpuId, vector);
            InterruptTrace.End(_extInt);
            _extInt = default;
            _count--;
            return;
        }
        if (_pending is null || _pending[vector] == default) return;
        var trace = _pending[vector];
        _pending[vector] = default;
        InterruptTrace.Inject(trace, Metrics.Vm, vcpuId, vector);
        if (_inService![vector] != default) InterruptTrace.End(_inService[vector]);
        else _count++;
        _inService[vector] = trace;
        _count--;
    }

    /// <summary>Drops the raise times of pending interrupts (an INIT cleared IRR).</summary>
    public void ForgetStamps()
    {
        if (_stamped == 0) return;
        if (_raisedAt is not null) Array.Clear(_raisedAt);
        _extIntRaisedAt = 0;
        _stamped = 0;
    }

    private void TakenStamped(int vector, bool extInt)
    {
        long raised;
        if (extInt)
        {
            raised = _extIntRaisedAt;
            _extIntRaisedAt = 0;
        }
        else
        {
            if (_raisedAt is null) return;
            raised = _raisedAt[vector];
            _raisedAt[vector] = 0;
        }
        if (raised == 0) return;
        _stamped--;
        InterruptLatency.Record(Metrics.Vm, vector, raised);
    }

    /// <summary>The in-service vector an EOI write is about to retire (the highest ISR bit); -1 if none.</summary>
    public static int HighestInService(Lapic model)
    {
        for (var v = 255; v >= 16; v--)
            if (model.IsrBit(v)) return v;
        return -1;
    }

    /// <summary>The guest's EOI retired <paramref name="vector"/>.</summary>
    public void EndOfInterrupt(int vector)
    {
        if (vector < 0 || _inService is null || _inService[vector] == default) return;
        var trace = _inService[vector];
        _inService[vector] = default;
        _count--;
        InterruptTrace.Eoi(trace, Metrics.Vm, vcpuId, vector);
    }
}
