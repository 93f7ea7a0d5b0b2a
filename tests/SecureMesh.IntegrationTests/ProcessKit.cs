using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace SecureMesh.IntegrationTests;

/// <summary>The outcome of one finished command.</summary>
internal sealed record CommandResult(int ExitCode, string Out, string Err)
{
    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Out}\nstderr:\n{Err}";
}

/// <summary>A child process whose output lines are collected as they come.</summary>
internal sealed partial class ChildProcess : IAsyncDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly Task _stdout;
    private readonly Task _stderr;

    private ChildProcess(Process process)
    {
        _process = process;
        _stdout = Pump(process.StandardOutput);
        _stderr = Pump(process.StandardError);
    }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public string Output
    {
        get
        {
            lock (_lines)
            {
                return string.Join('\n', _lines);
            }
        }
    }

    public static ChildProcess Start(string fileName, IEnumerable<string> args, string? workingDirectory = null, IDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? AppContext.BaseDirectory,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        start.Environment.Remove("SECUREMESH_HOME");
        start.Environment.Remove("SECUREMESH_PASSPHRASE");
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }
        var process = Process.Start(start) ?? throw new InvalidOperationException($"{fileName} did not start");
        process.StandardInput.Close();
        return new ChildProcess(process);
    }

    /// <summary>Waits for a line matching <paramref name="pattern"/> and returns its match.</summary>
    public async Task<Match> WaitForLineAsync(string pattern, TimeSpan? patience = null)
    {
        var regex = new Regex(pattern, RegexOptions.CultureInvariant);
        var deadline = DateTime.UtcNow + (patience ?? Patience);
        while (DateTime.UtcNow < deadline)
        {
            lock (_lines)
            {
                foreach (var line in _lines)
                {
                    var match = regex.Match(line);
                    if (match.Success)
                    {
                        return match;
                    }
                }
            }
            if (_process.HasExited)
            {
                await Task.WhenAll(_stdout, _stderr);
                lock (_lines)
                {
                    if (_lines.Select(l => regex.Match(l)).FirstOrDefault(m => m.Success) is { } last)
                    {
                        return last;
                    }
                }
                Assert.Fail($"process exited ({_process.ExitCode}) before printing /{pattern}/:\n{Output}");
            }
            await Task.Delay(20);
        }
        Assert.Fail($"no line matched /{pattern}/ in time:\n{Output}");
        return Match.Empty;
    }

    /// <summary>Sends a POSIX signal (SIGTERM = 15, SIGINT = 2).</summary>
    public void Signal(int signal)
    {
        if (Kill(_process.Id, signal) != 0)
        {
            var error = Marshal.GetLastPInvokeError();
            // ESRCH: it has already exited; say how, so a failure shows the child's own error.
            var how = _process.HasExited ? $" (it had exited with {_process.ExitCode}):\n{Output}" : "";
            throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed: {error}{how}");
        }
    }

    public async Task<int> WaitForExitAsync(TimeSpan? patience = null)
    {
        using var cts = new CancellationTokenSource(patience ?? Patience);
        await _process.WaitForExitAsync(cts.Token);
        await Task.WhenAll(_stdout, _stderr);
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }

    private Task Pump(StreamReader reader) => Task.Run(async () =>
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            lock (_lines)
            {
                _lines.Add(line);
            }
        }
    });

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}

/// <summary>Runs the real <c>securemesh</c> program (the built securemesh.dll, or SECUREMESH_EXE: <see cref="SecureMeshProgram"/>) against a data directory.</summary>
internal static class SecureMeshCli
{
    public static ChildProcess Start(string home, params string[] args)
    {
        var command = SecureMeshProgram.Command(["--home", home, .. args]);
        return ChildProcess.Start(command[0], command.Skip(1));
    }

    public static Task<CommandResult> RunAsync(string home, params string[] args) => RunAsync(home, TimeSpan.FromSeconds(60), args);

    /// <summary>Runs one command to its end; a command still running after <paramref name="timeout"/> is killed (exit code -1).</summary>
    public static async Task<CommandResult> RunAsync(string home, TimeSpan timeout, params string[] args)
    {
        var command = SecureMeshProgram.Command(["--home", home, .. args]);
        var start = new ProcessStartInfo(command[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in command.Skip(1))
        {
            start.ArgumentList.Add(arg);
        }
        start.Environment.Remove("SECUREMESH_HOME");
        start.Environment.Remove("SECUREMESH_PASSPHRASE");
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            return new CommandResult(-1, await stdout, $"killed after {timeout.TotalSeconds:0}s\n{await stderr}");
        }
        return new CommandResult(process.ExitCode, await stdout, await stderr);
    }
}

/// <summary>Where the js-libp2p scripts are (tests/interop).</summary>
internal static class JsPeer
{
    public static string InteropDirectory() => SecureMesh.Tests.Shared.JsInterop.Directory();
}

/// <summary>A stock js-libp2p 3.x node (TCP, Noise, yamux, identify, ping), driven by tests/interop/libp2p-node.mjs; one JSON event a line.</summary>
internal static class Libp2pJs
{
    /// <summary>A fresh 32-byte seed for the js node's key (64 hex digits), so its Peer ID is known before it runs.</summary>
    public static string NewSeed() => Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    public static ChildProcess Start(string? seed, params string[] args)
    {
        // The child's stdin is closed at once: a listener runs until it is signalled (or disposed) instead.
        var environment = new Dictionary<string, string> { ["LIBP2P_UNTIL_SIGNAL"] = "1" };
        if (seed is not null)
        {
            environment["LIBP2P_SEED"] = seed;
        }
        return ChildProcess.Start("node", ["libp2p-node.mjs", .. args], JsPeer.InteropDirectory(), environment);
    }

    /// <summary>The Peer ID of the js node with key seed <paramref name="seed"/>.</summary>
    public static async Task<string> PeerIdAsync(string seed)
    {
        await using var js = Start(seed, "peerid");
        var line = await EventAsync(js, "peerid");
        Assert.Equal(0, await js.WaitForExitAsync());
        return line.GetProperty("peerId").GetString()!;
    }

    /// <summary>Waits for the next line with event <paramref name="name"/>.</summary>
    public static async Task<System.Text.Json.JsonElement> EventAsync(ChildProcess js, string name, TimeSpan? patience = null)
    {
        var match = await js.WaitForLineAsync("^(\\{\"event\":\"" + name + "\".*)$", patience ?? TimeSpan.FromSeconds(60));
        using var doc = System.Text.Json.JsonDocument.Parse(match.Groups[1].Value);
        return doc.RootElement.Clone();
    }

    /// <summary>Every event line printed so far.</summary>
    public static IReadOnlyList<System.Text.Json.JsonElement> Events(ChildProcess js) =>
        [.. js.Output.Split('\n').Where(l => l.StartsWith("{\"event\"", StringComparison.Ordinal)).Select(l =>
        {
            using var doc = System.Text.Json.JsonDocument.Parse(l);
            return doc.RootElement.Clone();
        })];
}

/// <summary>A test with its own temporary folder, removed afterwards, and helpers to drive <c>securemesh</c> in it.</summary>
public abstract class TempFolderTest : IDisposable
{
    protected TempFolderTest(string prefix) => Root = Directory.CreateTempSubdirectory(prefix).FullName;

    protected string Root { get; }

    /// <summary>Runs a command that must succeed.</summary>
    internal static async Task OkAsync(string home, params string[] args)
    {
        var result = await SecureMeshCli.RunAsync(home, args);
        Assert.True(result.ExitCode == 0, $"securemesh {string.Join(' ', args)}: {result}");
    }

    /// <summary>The Peer ID of the identity in <paramref name="home"/>.</summary>
    internal static async Task<string> PeerIdAsync(string home)
    {
        var id = await SecureMeshCli.RunAsync(home, "id", "--json");
        using var doc = System.Text.Json.JsonDocument.Parse(id.Out);
        return doc.RootElement.GetProperty("peerId").GetString()!;
    }

    /// <summary>
    /// Two identities, <c>Root/a</c> and <c>Root/b</c>, that trust each other at free loopback ports (for their
    /// <c>run --listen</c>), with LAN discovery off. Each is added at <c>127.0.0.1:PORT</c>, or at what
    /// <paramref name="addressOfA"/> / <paramref name="addressOfB"/> make of its Peer ID and port.
    /// </summary>
    internal async Task<TrustedPair> TwoTrustedHomesAsync(Func<string, int, string>? addressOfA = null, Func<string, int, string>? addressOfB = null)
    {
        var a = Path.Combine(Root, "a");
        var b = Path.Combine(Root, "b");
        await OkAsync(a, "init");
        await OkAsync(b, "init");
        var (aId, bId) = (await PeerIdAsync(a), await PeerIdAsync(b));
        var (aPort, bPort) = (FreePort(), FreePort());
        await OkAsync(a, "peers", "add", bId, "--addr", addressOfB?.Invoke(bId, bPort) ?? $"127.0.0.1:{bPort}", "--trust");
        await OkAsync(b, "peers", "add", aId, "--addr", addressOfA?.Invoke(aId, aPort) ?? $"127.0.0.1:{aPort}", "--trust");
        foreach (var home in new[] { a, b })
        {
            await OkAsync(home, "config", "set", "discovery", "off");
        }
        return new TrustedPair(a, b, aId, bId, aPort, bPort);
    }

    internal sealed record TrustedPair(string A, string B, string AId, string BId, int APort, int BPort);

    /// <summary>A TCP port on 127.0.0.1 that was free a moment ago.</summary>
    internal static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
        GC.SuppressFinalize(this);
    }
}
