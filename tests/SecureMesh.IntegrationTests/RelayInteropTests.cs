using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace SecureMesh.IntegrationTests;

/// <summary>
/// Circuit relay v2 against js-libp2p (<c>@libp2p/circuit-relay-v2</c> from npm, pinned in tests/interop's lock), with
/// the real <c>securemesh run</c>: a js relay serves our node's reservation and a js node pings us through it; our relay
/// service serves a js node's reservation and our other node pings it through us.
/// </summary>
public sealed class RelayInteropTests : TempFolderTest
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    public RelayInteropTests()
        : base("securemesh-relay-interop-")
    {
    }

    private async Task<(ChildProcess Node, int Port, string PeerId)> StartNodeAsync(string home)
    {
        var node = SecureMeshCli.Start(home, "run", "--listen", "127.0.0.1:0");
        var match = await node.WaitForLineAsync(@"listening on 127\.0\.0\.1:(\d+);", Patience);
        return (node, int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture), await PeerIdAsync(home));
    }

    [Fact]
    public async Task A_js_relay_serves_our_reservation_and_a_js_node_pings_us_through_it()
    {
        var home = Path.Combine(Root, "us");
        await OkAsync(home, "init");
        var relaySeed = Libp2pJs.NewSeed();
        var dialerSeed = Libp2pJs.NewSeed();
        var dialerPeer = await Libp2pJs.PeerIdAsync(dialerSeed);
        await using var relay = Libp2pJs.Start(relaySeed, "relay", "0");
        var listening = await Libp2pJs.EventAsync(relay, "listening");
        var relayPeer = listening.GetProperty("peerId").GetString()!;
        var relayAddress = listening.GetProperty("multiaddrs").EnumerateArray().Select(a => a.GetString()!).First(a => a.StartsWith("/ip4/127.0.0.1/tcp/", StringComparison.Ordinal));
        await OkAsync(home, "peers", "add", relayPeer, "--trust", "--name", "js-relay");
        await OkAsync(home, "peers", "add", dialerPeer, "--trust", "--name", "js-dialer");
        await OkAsync(home, "config", "set", "discovery", "off");
        await OkAsync(home, "config", "set", "relays", relayAddress);

        var (node, _, us) = await StartNodeAsync(home);
        await using (node)
        {
            await node.WaitForLineAsync($"reserved a relay slot on {relayPeer}", Patience);
            await using var dialer = Libp2pJs.Start(dialerSeed, "dial", $"{relayAddress}/p2p-circuit/p2p/{us}", "--ping", "3");
            var done = await Libp2pJs.EventAsync(dialer, "done", TimeSpan.FromSeconds(90));
            Assert.True(done.GetProperty("ok").GetBoolean(), dialer.Output + node.Output);
            var events = Libp2pJs.Events(dialer);
            var connected = events.Single(e => e.GetProperty("event").GetString() == "connected");
            Assert.Equal(us, connected.GetProperty("peerId").GetString());
            Assert.Contains("/p2p-circuit", connected.GetProperty("remoteAddr").GetString(), StringComparison.Ordinal);
            Assert.Equal(3, events.Count(e => e.GetProperty("event").GetString() == "ping"));
            // Our node took the circuit as a relayed session with the js dialer (which may then dial our listen address
            // directly, as js-libp2p does when it sees one: the direct connection then replaces the relayed one).
            await node.WaitForLineAsync(Regex.Escape($"session with {dialerPeer} (inbound, relayed via {relayPeer})"), Patience);
            node.Signal(15);
            Assert.Equal(0, await node.WaitForExitAsync(TimeSpan.FromSeconds(20)));
        }
    }

    [Fact]
    public async Task Our_relay_serves_a_js_nodes_reservation_and_our_other_node_pings_it_through_us()
    {
        var relayHome = Path.Combine(Root, "relay");
        var otherHome = Path.Combine(Root, "other");
        await OkAsync(relayHome, "init");
        await OkAsync(otherHome, "init");
        var relayPeer = await PeerIdAsync(relayHome);
        var otherPeer = await PeerIdAsync(otherHome);
        var jsSeed = Libp2pJs.NewSeed();
        var jsPeer = await Libp2pJs.PeerIdAsync(jsSeed);
        await OkAsync(relayHome, "config", "set", "discovery", "off");
        await OkAsync(relayHome, "peers", "add", jsPeer, "--trust", "--name", "js");
        await OkAsync(relayHome, "peers", "add", otherPeer, "--trust", "--name", "other");
        await OkAsync(otherHome, "peers", "add", relayPeer, "--trust", "--name", "relay");
        await OkAsync(otherHome, "peers", "add", jsPeer, "--trust", "--name", "js");

        var (node, port, _) = await StartNodeAsync(relayHome);
        await using (node)
        {
            var relayAddress = $"/ip4/127.0.0.1/tcp/{port}/p2p/{relayPeer}";
            await using var js = Libp2pJs.Start(jsSeed, "reserve", relayAddress);
            var reserved = await Libp2pJs.EventAsync(js, "reserved", Patience);
            var circuit = $"{relayAddress}/p2p-circuit/p2p/{jsPeer}";
            Assert.Contains(circuit, reserved.GetProperty("multiaddrs").EnumerateArray().Select(a => a.GetString()));

            // The other node (one-off, no node of its own running) pings the js node through our relay.
            var ping = await SecureMeshCli.RunAsync(otherHome, "ping", circuit, "--count", "2");
            Assert.True(ping.ExitCode == 0, ping + node.Output + js.Output);
            Assert.Equal(2, ping.Out.Split('\n').Count(l => l.StartsWith($"pong from {jsPeer}: ", StringComparison.Ordinal)));
            // js saw a relayed connection from our other node.
            Assert.Contains(Libp2pJs.Events(js), e => e.GetProperty("event").GetString() == "connection"
                && e.GetProperty("peerId").GetString() == otherPeer && e.GetProperty("remoteAddr").GetString()!.Contains("/p2p-circuit", StringComparison.Ordinal));

            var log = await SecureMeshCli.RunAsync(relayHome, "log", "--json");
            using var doc = JsonDocument.Parse(log.Out);
            var entries = doc.RootElement.EnumerateArray().ToList();
            Assert.Contains(entries, e => e.GetProperty("event").GetString() == "relay.reservation" && e.GetProperty("peerId").GetString() == jsPeer);
            Assert.Contains(entries, e => e.GetProperty("event").GetString() == "relay.circuit" && e.GetProperty("peerId").GetString() == otherPeer
                && e.GetProperty("detail").GetString()!.Contains(jsPeer, StringComparison.Ordinal));
            node.Signal(15);
            Assert.Equal(0, await node.WaitForExitAsync(TimeSpan.FromSeconds(20)));
        }
    }
}
