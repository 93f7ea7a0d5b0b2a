using System.CommandLine;
using SecureMesh.Cli.Commands;
using SecureMesh.Core;

namespace SecureMesh.Cli;

/// <summary>Builds the command tree and maps outcomes to exit codes: 0 success, 1 failure, 2 usage.</summary>
internal static class CliApp
{
    public const int Success = 0;
    public const int Failure = 1;
    public const int Usage = 2;

    /// <summary>A download finished but the quarantine kept it (the reason is printed).</summary>
    public const int Held = 3;

    internal static readonly Option<string?> HomeOption = new("--home")
    {
        Description = "Data directory (default: $SECUREMESH_HOME, else the per-user data folder)",
        HelpName = "DIR",
        Recursive = true,
    };

    internal static readonly Option<bool> JsonOption = new("--json")
    {
        Description = "Print data as JSON",
        Recursive = true,
    };

    internal static readonly Option<bool> VerboseOption = new("--verbose", "-v")
    {
        Description = "More output; stack traces on errors",
        Recursive = true,
    };

    public static int Run(string[] args) => Run(args, CliConsole.System());

    public static int Run(string[] args, CliConsole console)
    {
        var root = Build(console);
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors)
            {
                console.Err.WriteLine($"error: {error.Message}");
            }
            console.Err.WriteLine("Run 'securemesh --help' for usage.");
            return Usage;
        }
        var config = new InvocationConfiguration
        {
            Output = console.Out,
            Error = console.Err,
            EnableDefaultExceptionHandler = false,
            // The commands handle SIGINT/SIGTERM themselves and shut down cleanly; no forced exit.
            ProcessTerminationTimeout = null,
        };
        return parse.Invoke(config);
    }

    internal static RootCommand Build(CliConsole console)
    {
        var root = new RootCommand("SecureMesh: share files directly with people you trust, over authenticated, encrypted connections.")
        {
            HomeOption,
            JsonOption,
            VerboseOption,
        };
        IdentityCommands.Add(root, console);
        TrustCommands.Add(root, console);
        GroupCommands.Add(root, console);
        ConfigCommands.Add(root, console);
        NodeCommands.Add(root, console);
        PingCommand.Add(root, console);
        QuarantineCommands.Add(root, console);
        ShareCommands.Add(root, console);
        TransferCommands.Add(root, console);
        BackupCommands.Add(root, console);
        TuiCommand.Add(root, console);
        DemoCommand.Add(root, console);
        return root;
    }

    /// <summary>Runs a command body with the shared context and maps exceptions to one clear line and exit 1.</summary>
    internal static int Execute(ParseResult parse, CliConsole console, Func<CliContext, int> body)
    {
        var verbose = parse.GetValue(VerboseOption);
        try
        {
            var context = new CliContext(console, CliContext.ResolveHome(parse.GetValue(HomeOption), console.Environment), parse.GetValue(JsonOption), verbose);
            return body(context);
        }
        catch (Exception ex)
        {
            return Report(console, ex, verbose);
        }
    }

    /// <summary>Async variant of <see cref="Execute"/>.</summary>
    internal static async Task<int> ExecuteAsync(ParseResult parse, CliConsole console, Func<CliContext, CancellationToken, Task<int>> body, CancellationToken cancellationToken)
    {
        var verbose = parse.GetValue(VerboseOption);
        try
        {
            var context = new CliContext(console, CliContext.ResolveHome(parse.GetValue(HomeOption), console.Environment), parse.GetValue(JsonOption), verbose);
            return await body(context, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            console.Err.WriteLine("interrupted");
            return 130;
        }
        catch (Exception ex)
        {
            return Report(console, ex, verbose);
        }
    }

    internal static int Report(CliConsole console, Exception ex, bool verbose)
    {
        var message = ex switch
        {
            SecureMeshException sme => sme.Message,
            UnauthorizedAccessException => $"permission denied: {ex.Message}",
            IOException => ex.Message,
            _ => $"unexpected error ({ex.GetType().Name}): {ex.Message}",
        };
        // Messages may quote a peer (its error text, an announced name): one line, nothing that steers the terminal.
        console.Err.WriteLine($"error: {TerminalText.Safe(OneLine(message))}");
        if (verbose)
        {
            console.Err.WriteLine(TerminalText.SafeLines(ex.ToString()));
        }
        return ex is SecureMeshException { Kind: SecureMeshErrorKind.InvalidInput } && ex.Data.Contains("usage") ? Usage : Failure;
    }

    /// <summary>A usage error (a bad option or option value): exit code 2 instead of 1.</summary>
    internal static SecureMeshException UsageError(string message)
    {
        var e = new SecureMeshException(SecureMeshErrorKind.InvalidInput, message);
        e.Data["usage"] = true;
        return e;
    }

    private static string OneLine(string text) => text.ReplaceLineEndings(" ").Trim();
}
