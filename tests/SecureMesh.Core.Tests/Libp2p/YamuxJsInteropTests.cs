using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using SecureMesh.Core.Libp2p.Yamux;
using static SecureMesh.Core.Tests.Libp2p.YamuxKit;

namespace SecureMesh.Core.Tests.Libp2p;

/// <summary>
/// Our yamux against js-libp2p's (@chainsafe/libp2p-yamux 8.0.1, driven by tests/interop/yamux-peer.mjs) over plain
/// loopback TCP: each side opens streams that the other echoes, with more data per stream than one window, both
/// sides ping, and ours ends the session. Needs Node.js and <c>npm ci --prefix tests/interop</c>; fails (never skips)
/// without them.
/// </summary>
public class YamuxJsInteropTests
{
    private const int Streams = 20;
    private const int Bytes = 600_000; // more than two initial windows: window updates must flow both ways

    [Fact]
    public async Task Js_listens_and_we_dial_streams_both_ways_echo()
    {
        await using var node = new NodeYamuxPeer("listen", Streams.ToString(), Bytes.ToString());
        var port = int.Parse(await node.WaitForLineAsync("LISTENING"));
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(IPAddress.Loopback, port);
        await RunAsync(new YamuxSession(tcp.GetStream(), isClient: true), node);
    }

    [Fact]
    public async Task Js_dials_and_we_listen_streams_both_ways_echo()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        await using var node = new NodeYamuxPeer("dial", "127.0.0.1", ((IPEndPoint)listener.LocalEndpoint).Port.ToString(), Streams.ToString(), Bytes.ToString());
        var tcp = await listener.AcceptTcpClientAsync().WaitAsync(Patience);
        tcp.NoDelay = true;
        await RunAsync(new YamuxSession(tcp.GetStream(), isClient: false), node);
    }

    private static async Task RunAsync(YamuxSession session, NodeYamuxPeer node)
    {
        // Echo whatever js opens.
        var echoes = new List<Task<int>>();
        var accepting = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    var stream = await session.AcceptStreamAsync();
                    lock (echoes)
                    {
                        echoes.Add(Task.Run(async () =>
                        {
                            var buffer = new byte[32 * 1024];
                            var total = 0;
                            int n;
                            while ((n = await stream.ReadAsync(buffer)) > 0)
                            {
                                await stream.WriteAsync(buffer.AsMemory(0, n));
                                total += n;
                            }
                            await stream.CloseWriteAsync();
                            stream.Dispose();
                            return total;
                        }));
                    }
                }
            }
            catch (SecureMeshException)
            {
                // The session ended.
            }
        });

        // Our streams, echoed by js.
        var ours = await Task.WhenAll(Enumerable.Range(0, Streams).Select(i => Task.Run(async () =>
        {
            var stream = await session.OpenStreamAsync();
            Assert.Equal(session.IsClient ? 1u : 0u, stream.Id % 2);
            var data = RandomBytes(Bytes, 100 + i);
            var reading = ReadAllAsync(stream);
            await stream.WriteAsync(data);
            await stream.CloseWriteAsync();
            var echoed = await reading.WaitAsync(Patience);
            stream.Dispose();
            return echoed.AsSpan().SequenceEqual(data);
        })));
        Assert.All(ours, Assert.True);

        Assert.True(await session.PingAsync().WaitAsync(Patience) > TimeSpan.Zero);
        Assert.Equal(Streams.ToString(), await node.WaitForLineAsync("JS_DONE")); // js checked every echo of ours
        Assert.True(int.Parse(await node.WaitForLineAsync("PING")) >= 0);
        Task<int>[] ourEchoes;
        lock (echoes)
        {
            ourEchoes = [.. echoes];
        }
        Assert.Equal(Streams, ourEchoes.Length);
        Assert.All(await Task.WhenAll(ourEchoes).WaitAsync(Patience), total => Assert.Equal(Bytes, total));

        await session.CloseAsync().AsTask().WaitAsync(Patience);
        await accepting.WaitAsync(Patience);
        Assert.Equal(Streams.ToString(), await node.WaitForLineAsync("CLOSED"));
        Assert.Equal(0, await node.ExitCodeAsync());
        Assert.Equal(Streams, node.Lines("ECHOED").Count(l => l == Bytes.ToString()));
    }

    private sealed class NodeYamuxPeer : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly List<string> _lines = [];
        private readonly Task _stdout;
        private readonly Task<string> _stderr;

        public NodeYamuxPeer(params string[] args)
        {
            _process = SecureMesh.Tests.Shared.JsInterop.StartNode("yamux-peer.mjs", args);
            _stdout = Task.Run(async () =>
            {
                while (await _process.StandardOutput.ReadLineAsync() is { } line)
                {
                    lock (_lines)
                    {
                        _lines.Add(line);
                    }
                }
            });
            _stderr = _process.StandardError.ReadToEndAsync();
        }

        public IReadOnlyList<string> Lines(string prefix)
        {
            lock (_lines)
            {
                return [.. _lines.Where(l => l.StartsWith(prefix + " ", StringComparison.Ordinal)).Select(l => l[(prefix.Length + 1)..])];
            }
        }

        public async Task<string> WaitForLineAsync(string prefix)
        {
            var until = DateTime.UtcNow + Patience;
            while (DateTime.UtcNow < until)
            {
                if (Lines(prefix) is [var first, ..])
                {
                    return first;
                }
                if (_process.HasExited)
                {
                    await _stdout;
                    if (Lines(prefix) is [var last, ..])
                    {
                        return last;
                    }
                    Assert.Fail($"node exited ({_process.ExitCode}) before printing {prefix}: {await _stderr}");
                }
                await Task.Delay(20);
            }
            Assert.Fail($"node printed no {prefix} line in time; stderr so far is not available until exit");
            return "";
        }

        public async Task<int> ExitCodeAsync()
        {
            await _process.WaitForExitAsync().WaitAsync(Patience);
            await _stdout;
            var stderr = await _stderr;
            Assert.True(_process.ExitCode == 0, "node failed: " + stderr);
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
    }
}
