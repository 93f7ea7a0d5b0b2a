using System.Globalization;
using System.Net.Sockets;
using System.Text.Json;

namespace SecureMesh.IntegrationTests;

/// <summary>The real <c>securemesh run</c> against js-libp2p and against hostile clients.</summary>
public sealed class RunCommandTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("securemesh-run-").FullName;

    public void Dispose()
    {
        try
        {
            Directory.Delete(_home, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private async Task<(ChildProcess Node, int Port, string PeerId)> StartNodeAsync()
    {
        if (!File.Exists(Path.Combine(_home, "identity.key")))
        {
            var init = await SecureMeshCli.RunAsync(_home, "init");
            Assert.True(init.ExitCode == 0, init.ToString());
        }
        var id = await SecureMeshCli.RunAsync(_home, "id", "--json");
        using var doc = JsonDocument.Parse(id.Out);
        var peerId = doc.RootElement.GetProperty("peerId").GetString()!;
        var node = SecureMeshCli.Start(_home, "run", "--listen", "127.0.0.1:0");
        var match = await node.WaitForLineAsync(@"listening on 127\.0\.0\.1:(\d+)$");
        return (node, int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture), peerId);
    }

    [Fact]
    public async Task An_unknown_js_libp2p_peer_completes_the_handshake_is_disconnected_shows_as_pending_and_can_be_blocked()
    {
        var (node, port, peerId) = await StartNodeAsync();
        await using (node)
        {
            // A stock js-libp2p node dials (multistream-select, Noise, yamux) and then tries a ping.
            await using var js = Libp2pJs.Start(null, "dial", $"/ip4/127.0.0.1/tcp/{port}/p2p/{peerId}", "--ping", "1");
            var connected = await Libp2pJs.EventAsync(js, "connected");
            var jsPeer = connected.GetProperty("localPeerId").GetString()!;
            // js-libp2p checked our Peer ID itself (the dial fails otherwise), and the node closed on it: no pong.
            Assert.Equal(peerId, connected.GetProperty("peerId").GetString());
            Assert.False((await Libp2pJs.EventAsync(js, "done")).GetProperty("ok").GetBoolean(), js.Output);
            Assert.Equal(1, await js.WaitForExitAsync());
            Assert.DoesNotContain(Libp2pJs.Events(js), e => e.GetProperty("event").GetString() == "ping");

            var pending = await SecureMeshCli.RunAsync(_home, "peers", "pending", "--json");
            Assert.True(pending.ExitCode == 0, pending.ToString());
            using (var doc = JsonDocument.Parse(pending.Out))
            {
                var entry = doc.RootElement.EnumerateArray().Single(p => p.GetProperty("peerId").GetString() == jsPeer);
                Assert.Equal("pending", entry.GetProperty("state").GetString());
                // Where it came from, without the ephemeral source port (issue 14).
                Assert.Contains(entry.GetProperty("addresses").EnumerateArray(), a => a.GetString() == "127.0.0.1");
            }

            var block = await SecureMeshCli.RunAsync(_home, "peers", "block", jsPeer, "--reason", "interop test");
            Assert.True(block.ExitCode == 0, block.ToString());
            var list = await SecureMeshCli.RunAsync(_home, "peers", "list", "--json");
            using (var doc = JsonDocument.Parse(list.Out))
            {
                Assert.Equal("blocked", doc.RootElement.EnumerateArray().Single(p => p.GetProperty("peerId").GetString() == jsPeer).GetProperty("state").GetString());
            }
            var log = await SecureMeshCli.RunAsync(_home, "log", "--json");
            using (var doc = JsonDocument.Parse(log.Out))
            {
                var events = doc.RootElement.EnumerateArray()
                    .Where(e => e.GetProperty("peerId").GetString() == jsPeer)
                    .Select(e => e.GetProperty("event").GetString())
                    .ToList();
                Assert.Contains("handshake.pending", events);
                Assert.Contains("peer.blocked", events);
            }
            var verify = await SecureMeshCli.RunAsync(_home, "log", "--verify");
            Assert.True(verify.ExitCode == 0, verify.ToString());

            node.Signal(15);
            Assert.Equal(0, await node.WaitForExitAsync());
            Assert.Contains("stopped", node.Output, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task The_node_keeps_serving_good_handshakes_after_hundreds_of_hostile_connections()
    {
        Assert.Equal(0, (await SecureMeshCli.RunAsync(_home, "init")).ExitCode);
        Assert.Equal(0, (await SecureMeshCli.RunAsync(_home, "config", "set", "handshake-timeout", "1")).ExitCode);
        var (node, port, peerId) = await StartNodeAsync();
        await using (node)
        {
            var kinds = new Func<NetworkStream, Task>[]
            {
                s => s.WriteAsync(new byte[] { 0xde, 0xad, 0xbe, 0xef, 0x00, 0x13, 0x37 }).AsTask(),   // garbage
                s => s.WriteAsync(new byte[] { 0x00, 0x00 }).AsTask(),                                  // zero-length first message
                s => s.WriteAsync(new byte[] { 0x00, 0x20, 1, 2, 3 }).AsTask(),                          // truncated frame
                s => s.WriteAsync(new byte[] { 0xff, 0xff, 9 }).AsTask(),                                // length larger than what follows
                async s => { await s.WriteAsync(new byte[] { 0x00 }); await Task.Delay(300); },          // one byte, then silence
                _ => Task.CompletedTask,                                                                  // half-open: connect, say nothing
            };
            var attacks = Enumerable.Range(0, 300).Select(async i =>
            {
                using var client = new TcpClient();
                try
                {
                    await client.ConnectAsync("127.0.0.1", port);
                    var stream = client.GetStream();
                    await kinds[i % kinds.Length](stream);
                    using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                    var buffer = new byte[256];
                    while (await stream.ReadAsync(buffer, cts.Token) > 0)
                    {
                    }
                }
                catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
                {
                    // Refused, reset or timed out: all fine, as long as the node survives.
                }
            });
            await Task.WhenAll(attacks);
            Assert.False(node.HasExited, node.Output);

            // Half-open connections from this address have had their handshake deadline by now.
            await Task.Delay(TimeSpan.FromSeconds(1.5));
            await using var js = Libp2pJs.Start(null, "dial", $"/ip4/127.0.0.1/tcp/{port}/p2p/{peerId}");
            Assert.Equal(peerId, (await Libp2pJs.EventAsync(js, "connected")).GetProperty("peerId").GetString());
            await Libp2pJs.EventAsync(js, "done");
            // Hostile connections end with a logged reason, but a flood does not get a line each: 20 per 10 s window
            // (the flood is shorter than two windows), then one line with the count.
            var reasons = System.Text.RegularExpressions.Regex.Matches(node.Output, "(Handshake with .+ failed: .+|refused before the handshake: .+)").Count;
            Assert.InRange(reasons, 20, 40);
        }
    }

    [Fact]
    public async Task A_second_run_on_the_same_home_is_refused_clearly()
    {
        var (node, _, _) = await StartNodeAsync();
        await using (node)
        {
            var second = await SecureMeshCli.RunAsync(_home, "run", "--listen", "127.0.0.1:0");
            Assert.Equal(1, second.ExitCode);
            Assert.Contains("already running", second.Err, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_port_that_cannot_be_bound_is_a_clear_error()
    {
        using var blocker = new TcpListener(System.Net.IPAddress.Loopback, 0);
        blocker.Start();
        var port = ((System.Net.IPEndPoint)blocker.LocalEndpoint).Port;
        var run = await SecureMeshCli.RunAsync(_home, "run", "--listen", $"127.0.0.1:{port}");
        Assert.Equal(1, run.ExitCode);
        Assert.Contains($"cannot listen on 127.0.0.1:{port}", run.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.Err, StringComparison.Ordinal);
    }
}
