using System.Diagnostics;
using System.Globalization;

namespace SecureMesh.IntegrationTests;

/// <summary>
/// Runs <c>securemesh</c> in a real pseudo-terminal: a detached tmux session of a fixed size, read back with
/// <c>tmux capture-pane -p</c> and driven with <c>tmux send-keys</c>. Each instance uses its own tmux server socket
/// (<c>-L</c>), so tests never touch a user's tmux and can run side by side.
/// </summary>
/// <example>
/// How the integrator's end-to-end test is meant to look once <c>TuiHost.ClientFactory</c> is wired to the node:
/// <code>
/// if (!TmuxSession.IsAvailable) return;                       // no tmux on this machine
/// using var tmux = TmuxSession.StartSecureMesh(["--home", home, "tui"]);
/// tmux.WaitForText("Peer ID 12D3KooW");                       // the top bar
/// tmux.SendKeys("F5");                                        // Quarantine
/// tmux.WaitForText("[F5 Quarantine]");
/// tmux.SendKeys("C-q");
/// Assert.Equal(0, tmux.WaitForExit());                        // clean quit, terminal restored
/// </code>
/// </example>
internal sealed class TmuxSession : IDisposable
{
    public const string TmuxPath = "/usr/bin/tmux";

    private static readonly TimeSpan DefaultPatience = TimeSpan.FromSeconds(20);

    private readonly string _socket;
    private readonly string _exitFile;
    private readonly string _directory;

    private TmuxSession(string socket, string directory, string exitFile, int width, int height)
    {
        _socket = socket;
        _directory = directory;
        _exitFile = exitFile;
        Width = width;
        Height = height;
    }

    /// <summary>Whether tmux is installed here; tests that need it return early when it is not.</summary>
    public static bool IsAvailable => File.Exists(TmuxPath);

    public int Width { get; }

    public int Height { get; }

    public string Name => "securemesh";

    /// <summary>Starts <c>securemesh ARGS</c> (<see cref="SecureMeshProgram"/>: the dll, or SECUREMESH_EXE) in a new detached session of the given size.</summary>
    /// <param name="environment">Extra variables for the program (for example <c>SECUREMESH_HOME</c>).</param>
    public static TmuxSession StartSecureMesh(IReadOnlyList<string> args, int width = 120, int height = 40, IReadOnlyDictionary<string, string>? environment = null) =>
        Start(SecureMeshProgram.Command(args), width, height, environment);

    /// <summary>Starts any command line in a new detached session; the exit code is kept for <see cref="WaitForExit"/>.</summary>
    public static TmuxSession Start(IReadOnlyList<string> command, int width = 120, int height = 40, IReadOnlyDictionary<string, string>? environment = null)
    {
        if (!IsAvailable)
        {
            throw new InvalidOperationException($"tmux is not installed at {TmuxPath}");
        }
        var directory = Directory.CreateTempSubdirectory("securemesh-tmux-").FullName;
        var exitFile = Path.Combine(directory, "exit-code");
        var socket = $"securemesh-test-{Environment.ProcessId}-{Guid.NewGuid():N}";
        var session = new TmuxSession(socket, directory, exitFile, width, height);

        // A wrapper script records the exit code, then waits, so the final screen can still be captured after the program ends.
        var script = Path.Combine(directory, "run.sh");
        var exports = string.Concat((environment ?? new Dictionary<string, string>()).Select(kv => $"export {kv.Key}={Quote(kv.Value)}\n"));
        File.WriteAllText(script,
            // The script catches SIGINT (a handler, not "ignore", so the program does not inherit it) and lives on
            // after a Ctrl+C sent to the program, to record its exit code.
            "#!/bin/sh\n" + exports + "export TERM=xterm-256color\ntrap ':' INT\n"
            + string.Join(' ', command.Select(Quote)) + "\n"
            + $"echo $? > {Quote(exitFile)}.tmp && mv {Quote(exitFile)}.tmp {Quote(exitFile)}\n"
            + "exec sleep 600\n");
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        session.Tmux("new-session", "-d", "-s", session.Name,
            "-x", width.ToString(CultureInfo.InvariantCulture), "-y", height.ToString(CultureInfo.InvariantCulture), script);
        return session;
    }

    /// <summary>The visible screen as plain text, one line per row.</summary>
    public string Capture() => Tmux("capture-pane", "-p", "-t", Name);

    /// <summary>Everything the pane showed, scrolled-off history included, wrapped lines joined.</summary>
    public string CaptureAll() => Tmux("capture-pane", "-p", "-J", "-S", "-", "-t", Name);

    /// <summary>Sends keys in tmux's notation: <c>"F1"</c>, <c>"C-q"</c>, <c>"Enter"</c>, <c>"Escape"</c>, or literal text with <paramref name="literal"/>.</summary>
    public void SendKeys(string keys, bool literal = false)
    {
        if (literal)
        {
            Tmux("send-keys", "-t", Name, "-l", keys);
        }
        else
        {
            Tmux("send-keys", "-t", Name, keys);
        }
    }

    /// <summary>Polls the screen until it shows <paramref name="text"/>; throws with the last screen otherwise.</summary>
    public string WaitForText(string text, TimeSpan? patience = null)
    {
        var deadline = DateTime.UtcNow + (patience ?? DefaultPatience);
        var screen = string.Empty;
        while (DateTime.UtcNow < deadline)
        {
            screen = Capture();
            if (screen.Contains(text, StringComparison.Ordinal))
            {
                return screen;
            }
            Thread.Sleep(100);
        }
        throw new TimeoutException($"the screen never showed \"{text}\"; last screen:\n{screen}");
    }

    /// <summary>Whether the program has ended.</summary>
    public bool HasExited => File.Exists(_exitFile);

    /// <summary>Waits for the program to end and returns its exit code.</summary>
    public int WaitForExit(TimeSpan? patience = null)
    {
        var deadline = DateTime.UtcNow + (patience ?? DefaultPatience);
        while (!HasExited)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"the program did not exit; last screen:\n{Capture()}");
            }
            Thread.Sleep(100);
        }
        return int.Parse(File.ReadAllText(_exitFile).Trim(), CultureInfo.InvariantCulture);
    }

    public void Dispose()
    {
        try
        {
            Tmux("kill-server");
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private string Tmux(params string[] args)
    {
        var info = new ProcessStartInfo(TmuxPath)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add("-L");
        info.ArgumentList.Add(_socket);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        using var process = Process.Start(info) ?? throw new InvalidOperationException("tmux did not start");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(10_000))
        {
            process.Kill();
            throw new InvalidOperationException($"tmux {string.Join(' ', args)} hung");
        }
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"tmux {string.Join(' ', args)} failed: {error.Result.Trim()}");
        }
        return output.Result;
    }

    private static string Quote(string value) => SecureMeshProgram.ShellQuote(value);
}
