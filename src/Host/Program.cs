using Actorvisor.Host;
using Actorvisor.Host.Vm;

using var stdout = Console.OpenStandardOutput();
using var stdin = Console.OpenStandardInput();
return ActorvisorCli.Run(args, stdout, Console.Error, new ConsoleInput(stdin, TerminalRawMode.StdinIsTerminal));
