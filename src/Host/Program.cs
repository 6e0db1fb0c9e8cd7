using Actorvisor.Host;

using var stdout = Console.OpenStandardOutput();
return ActorvisorCli.Run(args, stdout, Console.Error);
