using System.CommandLine;
using SecureMesh.Cli.Tui;
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
