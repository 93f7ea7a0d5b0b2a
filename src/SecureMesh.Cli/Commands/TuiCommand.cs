using System.CommandLine;
using SecureMesh.Cli.Tui;
using SecureMesh.Node;
using Terminal.Gui.App;

namespace SecureMesh.Cli.Commands;

/// <summary><c>tui</c>: the terminal UI over the node client that <see cref="TuiHost.ClientFactory"/> provides.</summary>
internal static class TuiCommand
{
    public static void Add(RootCommand root, CliConsole console)
    {
        var tui = new Command("tui", "The terminal UI; hosts the node unless one is already running");
        tui.SetAction(parse => CliApp.Execute(parse, console, ctx =>
        {
            // Fails with a clear line (exit 1) before touching the terminal when no node service is wired in.
            if (TuiHost.ClientFactory is not null)
            {
                // Starting a node (opening the database, binding the port, perhaps asking for the passphrase) takes a
                // moment before the screen appears: say what is going on.
                ctx.Err.WriteLine(NodeLock.IsHeld(ctx.Home)
                    ? $"securemesh: connecting to the node running in {ctx.Home}…"
                    : $"securemesh: starting the node in {ctx.Home}…");
                ctx.Err.Flush();
            }
            var client = TuiHost.CreateClient(ctx);
            try
            {
                using IApplication app = Application.Create().Init();
                using var ui = new TuiApp(app, client);
                ui.Run();
            }
            finally
            {
                DisposeClient(client);
            }
            return CliApp.Success;
        }));
        root.Subcommands.Add(tui);
    }

    private static void DisposeClient(INodeClient client)
    {
        switch (client)
        {
            case IAsyncDisposable asyncDisposable:
                asyncDisposable.DisposeAsync().AsTask().GetAwaiter().GetResult();
                break;
            case IDisposable disposable:
                disposable.Dispose();
                break;
        }
    }
}
