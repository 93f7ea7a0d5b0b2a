using System.Globalization;
using System.Text.Json;

namespace SecureMesh.IntegrationTests;

/// <summary>
/// Issue 16: a stock js-libp2p 3.x node (tests/interop/libp2p-node.mjs: TCP, Noise, yamux, identify, ping from npm,
/// versions pinned in package-lock.json) and the real <c>securemesh</c> understand each other as libp2p nodes.
/// </summary>
public sealed class Libp2pInteropTests : TempFolderTest
{
    public Libp2pInteropTests()
        : base("securemesh-libp2p-")
    {
    }

    private string Home => Path.Combine(Root, "home");

    private async Task<(ChildProcess Node, int Port, string PeerId)> StartNodeAsync()
    {
        var node = SecureMeshCli.Start(Home, "run", "--listen", "127.0.0.1:0");
        var match = await node.WaitForLineAsync(@"listening on 127\.0\.0\.1:(\d+);", TimeSpan.FromSeconds(60));
        return (node, int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture), await PeerIdAsync(Home));
    }

    [Fact]
    public async Task A_trusted_js_node_dials_our_run_pings_it_identifies_it_and_pings_on_100_streams_of_one_connection()
    {
        await OkAsync(Home, "init");
        var seed = Libp2pJs.NewSeed();
        var jsPeer = await Libp2pJs.PeerIdAsync(seed);
        await OkAsync(Home, "peers", "add", jsPeer, "--trust", "--name", "js");
        var (node, port, peerId) = await StartNodeAsync();
        await using (node)
        {
            await using var js = Libp2pJs.Start(seed, "dial", $"/ip4/127.0.0.1/tcp/{port}/p2p/{peerId}", "--ping", "3", "--identify", "--concurrent-pings", "100");
            var done = await Libp2pJs.EventAsync(js, "done", TimeSpan.FromSeconds(90));
            Assert.True(done.GetProperty("ok").GetBoolean(), js.Output + node.Output);
            Assert.Equal(0, await js.WaitForExitAsync());
            var events = Libp2pJs.Events(js);

            var connected = events.Single(e => e.GetProperty("event").GetString() == "connected");
            Assert.Equal(peerId, connected.GetProperty("peerId").GetString());
            Assert.Equal("/noise", connected.GetProperty("encryption").GetString());
            Assert.Equal("/yamux/1.0.0", connected.GetProperty("multiplexer").GetString());
            Assert.Equal(3, events.Count(e => e.GetProperty("event").GetString() == "ping" && e.GetProperty("rtt").GetDouble() >= 0));

            var identify = events.Single(e => e.GetProperty("event").GetString() == "identify");
            Assert.Equal(peerId, identify.GetProperty("peerId").GetString());
            Assert.StartsWith("securemesh/", identify.GetProperty("agentVersion").GetString(), StringComparison.Ordinal);
            Assert.Equal("ipfs/0.1.0", identify.GetProperty("protocolVersion").GetString());
            var protocols = identify.GetProperty("protocols").EnumerateArray().Select(p => p.GetString()).ToList();
            Assert.Contains("/ipfs/id/1.0.0", protocols);
            Assert.Contains("/ipfs/ping/1.0.0", protocols);
            Assert.Contains("/securemesh/transfer/1.0.0", protocols);
            Assert.Contains("/securemesh/search/1.0.0", protocols);
            Assert.Contains($"/ip4/127.0.0.1/tcp/{port}", identify.GetProperty("listenAddrs").EnumerateArray().Select(a => a.GetString()));
            Assert.StartsWith("/ip4/127.0.0.1/tcp/", identify.GetProperty("observedAddr").GetString(), StringComparison.Ordinal);
            // The public key it sends is the protobuf-encoded Ed25519 key our Peer ID is made of.
            Assert.StartsWith("08011220", identify.GetProperty("publicKey").GetString(), StringComparison.Ordinal);

            var concurrent = events.Single(e => e.GetProperty("event").GetString() == "concurrent-pings");
            Assert.Equal(100, concurrent.GetProperty("ok").GetInt32());
            Assert.Equal(1, concurrent.GetProperty("connections").GetInt32());

            node.Signal(15);
            Assert.Equal(0, await node.WaitForExitAsync(TimeSpan.FromSeconds(20)));
        }
    }

    [Fact]
    public async Task An_untrusted_js_node_gets_no_ping_answered_and_is_recorded_as_pending()
    {
        await OkAsync(Home, "init");
        var (node, port, peerId) = await StartNodeAsync();
        await using (node)
        {
            var seed = Libp2pJs.NewSeed();
            var jsPeer = await Libp2pJs.PeerIdAsync(seed);
            await using var js = Libp2pJs.Start(seed, "dial", $"/ip4/127.0.0.1/tcp/{port}/p2p/{peerId}", "--ping", "2", "--identify");
            var done = await Libp2pJs.EventAsync(js, "done", TimeSpan.FromSeconds(90));
            Assert.False(done.GetProperty("ok").GetBoolean(), js.Output);
            Assert.Equal(1, await js.WaitForExitAsync());
            var events = Libp2pJs.Events(js);
            Assert.DoesNotContain(events, e => e.GetProperty("event").GetString() is "ping" or "identify");

            var pending = await SecureMeshCli.RunAsync(Home, "peers", "pending", "--json");
            using var doc = JsonDocument.Parse(pending.Out);
            Assert.Contains(doc.RootElement.EnumerateArray(), p => p.GetProperty("peerId").GetString() == jsPeer);
            node.Signal(15);
            Assert.Equal(0, await node.WaitForExitAsync(TimeSpan.FromSeconds(20)));
        }
    }

    [Fact]
    public async Task Securemesh_ping_pings_a_trusted_js_node_which_identifies_us_one_off_and_through_the_running_node()
    {
        await OkAsync(Home, "init");
        var ourPeer = await PeerIdAsync(Home);
        await using var js = Libp2pJs.Start(Libp2pJs.NewSeed(), "listen", "0");
        var listening = await Libp2pJs.EventAsync(js, "listening");
        var jsPeer = listening.GetProperty("peerId").GetString()!;
        var jsAddress = listening.GetProperty("multiaddrs").EnumerateArray().Select(a => a.GetString()!).First(a => a.StartsWith("/ip4/127.0.0.1/tcp/", StringComparison.Ordinal));
        var target = jsAddress.Contains("/p2p/", StringComparison.Ordinal) ? jsAddress : $"{jsAddress}/p2p/{jsPeer}";

        // Not trusted yet: default deny, nothing is dialled.
        var refused = await SecureMeshCli.RunAsync(Home, "ping", target, "--count", "1");
        Assert.True(refused.ExitCode == 1, refused.ToString());
        Assert.Contains("not trusted", refused.Err, StringComparison.Ordinal);

        await OkAsync(Home, "peers", "add", jsPeer, "--trust", "--name", "js");
        // No node runs: ping runs one of its own.
        var oneOff = await SecureMeshCli.RunAsync(Home, "ping", target, "--count", "2");
        Assert.True(oneOff.ExitCode == 0, oneOff.ToString());
        Assert.Equal(2, oneOff.Out.Split('\n').Count(l => l.StartsWith($"pong from {jsPeer}: ", StringComparison.Ordinal) && l.EndsWith(" ms", StringComparison.Ordinal)));
        // The js node identified us on that connection.
        var identified = await Libp2pJs.EventAsync(js, "identify");
        Assert.Equal(ourPeer, identified.GetProperty("peerId").GetString());
        Assert.StartsWith("securemesh/", identified.GetProperty("agentVersion").GetString(), StringComparison.Ordinal);
        Assert.Contains("/ipfs/ping/1.0.0", identified.GetProperty("protocols").EnumerateArray().Select(p => p.GetString()));

        // Through the running node (its control API), in JSON.
        var (node, _, _) = await StartNodeAsync();
        await using (node)
        {
            var through = await SecureMeshCli.RunAsync(Home, "ping", target, "--count", "2", "--json");
            Assert.True(through.ExitCode == 0, through.ToString() + node.Output);
            using var doc = JsonDocument.Parse(through.Out);
            Assert.Equal(jsPeer, doc.RootElement.GetProperty("peerId").GetString());
            Assert.Equal(2, doc.RootElement.GetProperty("rttMs").GetArrayLength());
            Assert.All(doc.RootElement.GetProperty("rttMs").EnumerateArray(), r => Assert.True(r.GetDouble() >= 0));
            var status = await SecureMeshCli.RunAsync(Home, "status", "--json");
            using var statusDoc = JsonDocument.Parse(status.Out);
            Assert.Contains(statusDoc.RootElement.GetProperty("connections").EnumerateArray(), c => c.GetProperty("peerId").GetString() == jsPeer);
            node.Signal(15);
            Assert.Equal(0, await node.WaitForExitAsync(TimeSpan.FromSeconds(20)));
        }
    }

    [Fact]
    public async Task Ping_exits_2_for_a_malformed_address_and_1_when_nobody_answers()
    {
        await OkAsync(Home, "init");
        var malformed = await SecureMeshCli.RunAsync(Home, "ping", "/ip4/300.1.1.1/tcp/1/p2p/x");
        Assert.True(malformed.ExitCode == 2, malformed.ToString());
        var noPeer = await SecureMeshCli.RunAsync(Home, "ping", "/ip4/127.0.0.1/tcp/4747");
        Assert.True(noPeer.ExitCode == 2, noPeer.ToString());

        var seed = Libp2pJs.NewSeed();
        var jsPeer = await Libp2pJs.PeerIdAsync(seed);
        await OkAsync(Home, "peers", "add", jsPeer, "--trust");
        var unreachable = await SecureMeshCli.RunAsync(Home, "ping", $"/ip4/127.0.0.1/tcp/{FreePort()}/p2p/{jsPeer}", "--count", "1");
        Assert.True(unreachable.ExitCode == 1, unreachable.ToString());
        Assert.Contains("cannot reach", unreachable.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Id_json_lists_multiaddrs_ending_in_our_peer_id_with_the_unspecified_address_expanded()
    {
        await OkAsync(Home, "init");
        var peerId = await PeerIdAsync(Home);
        await OkAsync(Home, "config", "set", "listen", "0.0.0.0:4747");
        var id = await SecureMeshCli.RunAsync(Home, "id", "--json");
        using var doc = JsonDocument.Parse(id.Out);
        var multiaddrs = doc.RootElement.GetProperty("multiaddrs").EnumerateArray().Select(a => a.GetString()!).ToList();
        Assert.NotEmpty(multiaddrs);
        Assert.All(multiaddrs, a => Assert.EndsWith($"/tcp/4747/p2p/{peerId}", a, StringComparison.Ordinal));
        Assert.DoesNotContain(multiaddrs, a => a.StartsWith("/ip4/0.0.0.0/", StringComparison.Ordinal));
        Assert.Contains($"/ip4/127.0.0.1/tcp/4747/p2p/{peerId}", multiaddrs);

        // A running node reports the port it really bound.
        var (node, port, _) = await StartNodeAsync();
        await using (node)
        {
            var running = await SecureMeshCli.RunAsync(Home, "id", "--json");
            using var runningDoc = JsonDocument.Parse(running.Out);
            Assert.Equal($"/ip4/127.0.0.1/tcp/{port}/p2p/{peerId}", Assert.Single(runningDoc.RootElement.GetProperty("multiaddrs").EnumerateArray()).GetString());
            node.Signal(15);
            Assert.Equal(0, await node.WaitForExitAsync(TimeSpan.FromSeconds(20)));
        }
    }
}
