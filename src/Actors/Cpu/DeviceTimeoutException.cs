namespace Actorvisor.Actors.Cpu;

/// <summary>A device did not answer a read in time: the VM stops with a host error instead of hanging.</summary>
public sealed class DeviceTimeoutException(string message) : Exception(message);
