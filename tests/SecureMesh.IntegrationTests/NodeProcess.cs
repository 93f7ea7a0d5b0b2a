using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using SecureMesh.Cli;

namespace SecureMesh.IntegrationTests;

/// <summary>A real <c>securemesh</c> process (optionally inside a network namespace) with its output captured line by line.</summary>
internal sealed partial class NodeProcess : IDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _lines = new();

    private NodeProcess(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                _lines.Enqueue(e.Data);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                _lines.Enqueue(e.Data);
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public static string Dotnet => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public string Output => string.Join('\n', _lines);

    /// <summary>Starts <c>securemesh --home HOME args…</c>, inside <paramref name="netns"/> when given.</summary>
    public static NodeProcess Start(string home, string? netns, params string[] args) => StartCommand(netns, SecureMeshProgram.Command(["--home", home, .. args]));

    /// <summary>Starts <c>dotnet DLL args…</c> (a program built beside the tests), inside <paramref name="netns"/> when given.</summary>
    public static NodeProcess StartDll(string dll, string? netns, params string[] args) => StartCommand(netns, [Dotnet, dll, .. args]);

    /// <summary>Starts <paramref name="command"/> (the program and its arguments), inside <paramref name="netns"/> when given.</summary>
    public static NodeProcess StartCommand(string? netns, IReadOnlyList<string> command)
    {
        var start = new ProcessStartInfo(netns is null ? command[0] : "ip")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (netns is not null)
        {
            // `ip netns exec` execs the command in place, so the pid is the program's.
            foreach (var a in new[] { "netns", "exec", netns, command[0] })
            {
                start.ArgumentList.Add(a);
            }
        }
        foreach (var a in command.Skip(1))
        {
            start.ArgumentList.Add(a);
        }
        start.Environment.Remove("SECUREMESH_PASSPHRASE");
        start.Environment["DOTNET_gcServer"] = "0";
        return new NodeProcess(Process.Start(start) ?? throw new InvalidOperationException($"could not start {command[0]}"));
    }

    public async Task WaitForLineAsync(string fragment, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!_lines.Any(l => l.Contains(fragment, StringComparison.Ordinal)))
        {
            if (_process.HasExited)
            {
                // Let the last lines arrive before judging.
                await Task.Delay(100);
                if (_lines.Any(l => l.Contains(fragment, StringComparison.Ordinal)))
                {
                    return;
                }
                Assert.Fail($"the process exited ({_process.ExitCode}) before printing '{fragment}':\n{Output}");
            }
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"no '{fragment}' within {timeout.TotalSeconds:0}s:\n{Output}");
            }
            await Task.Delay(50);
        }
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"the process did not exit within {timeout.TotalSeconds:0}s:\n{Output}");
        }
        return _process.ExitCode;
    }

    public void Signal(int signal)
    {
        if (Kill(_process.Id, signal) != 0)
        {
            Assert.Fail($"kill({_process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            try
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(5000);
            }
            catch (InvalidOperationException)
            {
            }
        }
        _process.Dispose();
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}

/// <summary>The CLI run in this process (it reaches a node process through its control socket).</summary>
internal static class Cli
{
    public static (int ExitCode, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var console = new CliConsole(output, error, new StringReader(string.Empty), _ => null, interactive: false);
        var code = CliApp.Run(args, console);
        return (code, output.ToString(), error.ToString());
    }

    public static JsonElement Json(params string[] args)
    {
        var (code, output, error) = Run([.. args, "--json"]);
        Assert.True(code == 0, $"securemesh {string.Join(' ', args)} --json: exit {code}: {error}");
        using var doc = JsonDocument.Parse(output);
        return doc.RootElement.Clone();
    }
}
