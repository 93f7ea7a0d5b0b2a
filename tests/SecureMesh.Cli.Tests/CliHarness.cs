using SecureMesh.Cli;

namespace SecureMesh.Cli.Tests;

/// <summary>Runs the CLI in-process with captured output and a private environment.</summary>
internal sealed class CliHarness : IDisposable
{
    public CliHarness()
    {
        Root = Directory.CreateTempSubdirectory("securemesh-cli-").FullName;
        Home = Path.Combine(Root, "home");
    }

    public string Root { get; }

    public string Home { get; }

    public Dictionary<string, string> Environment { get; } = [];

    public CliResult Run(params string[] args) => RunWithInput(string.Empty, args);

    public CliResult RunWithInput(string stdin, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var console = new CliConsole(output, error, new StringReader(stdin), name => Environment.GetValueOrDefault(name), interactive: false);
        var code = CliApp.Run(args, console);
        return new CliResult(code, output.ToString(), error.ToString());
    }

    /// <summary>Runs with <c>--home</c> set to this harness's data directory.</summary>
    public CliResult Home_(params string[] args) => Run(["--home", Home, .. args]);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

internal sealed record CliResult(int ExitCode, string Out, string Err)
{
    /// <summary>Error output lines, without blanks.</summary>
    public string[] ErrLines => Err.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Out}\nstderr:\n{Err}";
}
