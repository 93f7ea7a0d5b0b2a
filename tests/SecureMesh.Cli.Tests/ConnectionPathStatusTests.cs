using System.Text.Json;
using SecureMesh.Cli.Tests.Tui;
using SecureMesh.Cli.Tui;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Control;
using SecureMesh.Node.Network;

namespace SecureMesh.Cli.Tests;

/// <summary>Issue 17, item 6: <c>status</c> lists every connection with its path (and the relay when relayed); the TUI's Peers view shows it.</summary>
public sealed class ConnectionPathStatusTests
{
    [Fact]
    public async Task Status_lists_both_connected_peers_with_path_and_sas()
    {
        using var h = new CliHarness();
        await using var node = await NodeApiCommandTests.InProcessNode.StartAsync(h.Home);
        using var alice = NodeIdentity.Generate();
        using var bob = NodeIdentity.Generate();
        Assert.Equal(0, h.Home_("peers", "add", alice.PeerId.Text, "--trust", "--name", "alice").ExitCode);
        Assert.Equal(0, h.Home_("peers", "add", bob.PeerId.Text, "--trust", "--name", "bob").ExitCode);
        await using var toAlice = await PeerLink.DialAsync(alice, node.Node.LocalEndPoint, node.Identity.PeerId, TimeSpan.FromSeconds(5), CancellationToken.None);
        await using var toBob = await PeerLink.DialAsync(bob, node.Node.LocalEndPoint, node.Identity.PeerId, TimeSpan.FromSeconds(5), CancellationToken.None);
        await NodeApiCommandTests.UntilAsync(() => node.Node.Sessions.Count == 2, "both sessions");

        var json = h.Home_("status", "--json");
        Assert.True(json.ExitCode == 0, json.ToString());
        using var doc = JsonDocument.Parse(json.Out);
        var connections = doc.RootElement.GetProperty("connections").EnumerateArray().ToList();
        Assert.Equal(2, connections.Count);
        foreach (var peer in new[] { alice.PeerId, bob.PeerId })
        {
            var c = Assert.Single(connections, c => c.GetProperty("peerId").GetString() == peer.Text);
            Assert.Equal("direct", c.GetProperty("path").GetString());
            // No relay on a direct connection.
            Assert.Equal(JsonValueKind.Null, c.GetProperty("relay").ValueKind);
            Assert.Equal(node.Node.GetSession(peer)!.ShortAuthString, c.GetProperty("sas").GetString());
            // The keys that were there before stay.
            Assert.Equal("inbound", c.GetProperty("direction").GetString());
        }

        var text = h.Home_("status");
        Assert.True(text.ExitCode == 0, text.ToString());
        Assert.Contains("connections: 2", text.Out, StringComparison.Ordinal);
        var header = text.Out.Split('\n').Single(l => l.Contains("PEER ID", StringComparison.Ordinal));
        Assert.Contains("PATH", header, StringComparison.Ordinal);
        foreach (var name in new[] { "alice", "bob" })
        {
            var row = text.Out.Split('\n').Single(l => l.Contains(name, StringComparison.Ordinal));
            Assert.Contains(" direct ", row, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_relayed_connection_names_its_relay_for_people()
    {
        Assert.Equal("relayed via 12D3KooWRelay", ConnectionPaths.Describe("relayed", "12D3KooWRelay"));
        Assert.Equal("holepunched", ConnectionPaths.Describe("holepunched", null));
        Assert.Equal("direct", ConnectionPaths.Name(ConnectionPath.Direct));
        Assert.Equal("relayed", ConnectionPaths.Name(ConnectionPath.Relayed));
        Assert.Equal("holepunched", ConnectionPaths.Name(ConnectionPath.HolePunched));
    }

    [Fact]
    public async Task The_peers_view_shows_each_connections_path()
    {
        using var h = new CliHarness();
        await using var node = await NodeApiCommandTests.InProcessNode.StartAsync(h.Home);
        using var alice = NodeIdentity.Generate();
        Assert.Equal(0, h.Home_("peers", "add", alice.PeerId.Text, "--trust", "--name", "alice").ExitCode);
        await using var link = await PeerLink.DialAsync(alice, node.Node.LocalEndPoint, node.Identity.PeerId, TimeSpan.FromSeconds(5), CancellationToken.None);
        await NodeApiCommandTests.UntilAsync(() => node.Node.Sessions.Count == 1, "the session");

        var client = ControlNodeClient.ForTest(node.Server.Service!, new GroupControlService(node.Node.Database));
        var view = Assert.Single(await client.ListPeersAsync(CancellationToken.None), p => p.PeerId == alice.PeerId.Text);
        Assert.True(view.Online);
        Assert.Equal("direct", view.Path);

        var fake = new FakeNodeClient();
        fake.Peers.Add(new PeerView(FakeNodeClient.PeerIdOf(8).Text, "dave", PeerViewState.Trusted, true, FakeNodeClient.PeerIdOf(8).Fingerprint,
            "sierra-tango-5", [], Path: "relayed via 12D3…relay"));
        fake.Peers.Add(view with { Name = "amber" });
        using var tui = new TuiHarness(fake, width: 160, height: 40);
        tui.WaitForScreen("dave");
        Assert.Contains("relayed via", tui.Screen.Split('\n').Single(l => l.Contains("dave", StringComparison.Ordinal)), StringComparison.Ordinal);
        Assert.Contains("direct", tui.Screen.Split('\n').Single(l => l.Contains("amber", StringComparison.Ordinal)), StringComparison.Ordinal);
    }

    [Fact]
    public void The_top_bar_says_whether_the_node_is_reachable_and_how_it_is_mapped()
    {
        var status = new NodeStatus(true, "p", "f", [], "off", [], [],
            Reachability: [new ReachabilityInfo("/ip4/192.168.1.5/tcp/4747", "unknown", "listen", true, null), new ReachabilityInfo("/ip4/198.51.100.7/tcp/40001", "reachable", "mapped", true, DateTimeOffset.UnixEpoch)],
            PortMapping: "198.51.100.7:40001 by PCP from 192.168.1.1");
        Assert.Equal("reachable at /ip4/198.51.100.7/tcp/40001; mapping 198.51.100.7:40001 by PCP from 192.168.1.1", ControlNodeClient.DescribeReach(status));
        Assert.Equal("unreachable", ControlNodeClient.DescribeReach(status with { Reachability = [new ReachabilityInfo("/ip4/1.2.3.4/tcp/1", "unreachable", "observed", false, null)], PortMapping = "off" }));
        Assert.Equal("unknown", ControlNodeClient.DescribeReach(status with { Reachability = [], PortMapping = null }));

        var fake = new FakeNodeClient();
        fake.Status = fake.Status with { Reach = "reachable at /ip4/198.51.100.7/tcp/40001" };
        using var tui = new TuiHarness(fake, width: 200, height: 40);
        tui.WaitForScreen("Reach reachable at /ip4/198.51.100.7/tcp/40001");
    }

    [Fact]
    public void Port_mapping_is_on_by_default_and_set_with_config()
    {
        using var h = new CliHarness();
        Assert.Equal(0, h.Home_("init").ExitCode);
        Assert.Equal("on", h.Home_("config", "get", "port-mapping").Out.Trim());
        Assert.Equal(0, h.Home_("config", "set", "port-mapping", "no").ExitCode);
        Assert.Equal("off", h.Home_("config", "get", "port-mapping").Out.Trim());
        var bad = h.Home_("config", "set", "port-mapping", "maybe");
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("expected on or off", bad.Err, StringComparison.Ordinal);
        Assert.Equal("off", h.Home_("config", "get", "port-mapping").Out.Trim());
    }
}
