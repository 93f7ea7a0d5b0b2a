using System.Diagnostics;
using System.Text.Json;

namespace SecureMesh.Core.Tests.Libp2p;

/// <summary>
/// A stock js-libp2p node (tests/interop/libp2p-node.mjs: libp2p 3.x with TCP, Noise, yamux, identify and ping) in a
/// child process, read as JSON lines. Fails (never skips) when Node.js or tests/interop/node_modules is missing.
/// </summary>
internal sealed class JsLibp2pNode : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<JsonElement> _events = [];
    private readonly List<string> _raw = [];
    private readonly Task _stdout;
    private readonly Task<string> _stderr;

    public JsLibp2pNode(params string[] args)
    {
        _process = SecureMesh.Tests.Shared.JsInterop.StartNode("libp2p-node.mjs", args, withInput: true);
        _stdout = Task.Run(async () =>
        {
            while (await _process.StandardOutput.ReadLineAsync() is { } line)
            {
                lock (_events)
                {
                    _raw.Add(line);
                    try
                    {
                        _events.Add(JsonDocument.Parse(line).RootElement.Clone());
                    }
                    catch (JsonException)
                    {
                        // Not one of ours (a library's console output): kept in the raw lines for the failure message.
                    }
                }
            }
        });
        _stderr = _process.StandardError.ReadToEndAsync();
    }

    /// <summary>Starts a listener on 127.0.0.1 and waits for its address.</summary>
    public static async Task<(JsLibp2pNode Node, string PeerId, string Multiaddr, int Port)> ListenAsync(params string[] flags)
    {
        var node = new JsLibp2pNode(["listen", "0", .. flags]);
        var listening = await node.WaitForEventAsync("listening");
        var address = listening.GetProperty("multiaddrs")[0].GetString()!;
        // "/ip4/127.0.0.1/tcp/PORT/p2p/ID": the test knows the shape it asked for.
        var parts = address.Split('/');
        return (node, listening.GetProperty("peerId").GetString()!, address, int.Parse(parts[4], System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>The first event named <paramref name="name"/> that matches, waiting up to 30 s; fails with what was seen.</summary>
    public async Task<JsonElement> WaitForEventAsync(string name, Func<JsonElement, bool>? match = null, double seconds = 30)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(seconds);
        while (DateTime.UtcNow < until)
        {
            lock (_events)
            {
                foreach (var e in _events)
                {
                    if (e.TryGetProperty("event", out var kind) && kind.GetString() == name && (match is null || match(e)))
                    {
                        return e;
                    }
                }
            }
            if (_process.HasExited && _stdout.IsCompleted)
            {
                break;
            }
            await Task.Delay(20);
        }
        Assert.Fail($"js-libp2p never reported '{name}'. stdout:\n{Output}\nstderr:\n{(_process.HasExited ? await _stderr : "(running)")}");
        return default;
    }

    /// <summary>Every event named <paramref name="name"/> so far.</summary>
    public IReadOnlyList<JsonElement> Events(string name)
    {
        lock (_events)
        {
            return [.. _events.Where(e => e.TryGetProperty("event", out var kind) && kind.GetString() == name)];
        }
    }

    public string Output
    {
        get
        {
            lock (_events)
            {
                return string.Join('\n', _raw);
            }
        }
    }

    /// <summary>Waits for the process to end; returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(double seconds = 60)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        await _process.WaitForExitAsync(cts.Token);
        await _stdout;
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            // A listener stops when its stdin closes.
            _process.StandardInput.Close();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or InvalidOperationException or IOException)
        {
            if (!_process.HasExited)
            {
                _process.Kill();
            }
        }
        _process.Dispose();
    }
}
