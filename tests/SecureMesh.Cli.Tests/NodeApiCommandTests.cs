using System.Net;
using System.Text.Json;
using SecureMesh.Core.Identity;
using SecureMesh.Node;
using SecureMesh.Node.Control;
using SecureMesh.Storage;

namespace SecureMesh.Cli.Tests;

public sealed class NodeApiCommandTests
{
    [Fact]
    public void Status_without_a_node_says_not_running_and_exits_0()
    {
        using var h = new CliHarness();
        Assert.Equal(0, h.Home_("init").ExitCode);
        var text = h.Home_("status");
        Assert.True(text.ExitCode == 0, text.ToString());
        Assert.Contains("node: not running", text.Out, StringComparison.Ordinal);
        Assert.Contains("peer id: 12D3KooW", text.Out, StringComparison.Ordinal);
        Assert.Contains("listen: 0.0.0.0:4747 (setting)", text.Out, StringComparison.Ordinal);

        var json = h.Home_("status", "--json");
        Assert.Equal(0, json.ExitCode);
        using var doc = JsonDocument.Parse(json.Out);
        Assert.False(doc.RootElement.GetProperty("running").GetBoolean());
        Assert.StartsWith("12D3KooW", doc.RootElement.GetProperty("peerId").GetString(), StringComparison.Ordinal);
        Assert.Equal(0, doc.RootElement.GetProperty("connections").GetArrayLength());
    }

    [Fact]
    public async Task With_a_running_node_the_commands_go_through_its_control_API()
    {
        using var h = new CliHarness();
        await using var node = await InProcessNode.StartAsync(h.Home);
        using var friend = NodeIdentity.Generate();

        var status = h.Home_("status", "--json");
        Assert.True(status.ExitCode == 0, status.ToString());
        using (var doc = JsonDocument.Parse(status.Out))
        {
            Assert.True(doc.RootElement.GetProperty("running").GetBoolean());
            Assert.Equal(node.Identity.PeerId.Text, doc.RootElement.GetProperty("peerId").GetString());
        }
        Assert.Contains("node: running", h.Home_("status").Out, StringComparison.Ordinal);

        Assert.Equal(0, h.Home_("peers", "add", friend.PeerId.Text, "--trust", "--name", "friend").ExitCode);
        // The node itself sees the new trust at once: the friend may connect.
        await using var connection = await Node.Network.PeerLink.DialAsync(friend, node.Node.LocalEndPoint, node.Identity.PeerId, TimeSpan.FromSeconds(3), CancellationToken.None);
        await UntilAsync(() => node.Node.GetSession(friend.PeerId) is not null, "the session");

        var list = h.Home_("peers", "list", "--json");
        using (var doc = JsonDocument.Parse(list.Out))
        {
            var p = Assert.Single(doc.RootElement.EnumerateArray());
            Assert.Equal("trusted", p.GetProperty("state").GetString());
            Assert.True(p.GetProperty("connected").GetBoolean());
        }
        var statusText = h.Home_("status");
        Assert.Contains("connections: 1", statusText.Out, StringComparison.Ordinal);
        Assert.Contains("friend", statusText.Out, StringComparison.Ordinal);

        var block = h.Home_("peers", "block", friend.PeerId.Text, "--reason", "test");
        Assert.True(block.ExitCode == 0, block.ToString());
        await UntilAsync(() => node.Node.GetSession(friend.PeerId) is null, "the blocked peer's session to close");

        var set = h.Home_("config", "set", "listen", "127.0.0.1:4999");
        Assert.Equal(0, set.ExitCode);
        Assert.Contains("takes effect on restart", set.Out, StringComparison.Ordinal);
        Assert.Equal("127.0.0.1:4999", h.Home_("config", "get", "listen").Out.Trim());

        var bad = h.Home_("peers", "trust", "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("error:", bad.Err, StringComparison.Ordinal);
        Assert.Single(bad.ErrLines);

        var log = h.Home_("log", "--json");
        using (var doc = JsonDocument.Parse(log.Out))
        {
            Assert.Contains(doc.RootElement.EnumerateArray(), e => e.GetProperty("event").GetString() == "peer.blocked");
        }
        Assert.Contains("audit log intact", h.Home_("log", "--verify").Out, StringComparison.Ordinal);
        Assert.Equal(0, h.Home_("block", "addr", "10.1.0.0/16").ExitCode);
        Assert.Contains("10.1.0.0/16", h.Home_("blocklist").Out, StringComparison.Ordinal);
        Assert.True(node.Server.Service is not null);
    }

    [Fact]
    public async Task A_node_that_holds_the_lock_but_does_not_answer_is_one_clear_error()
    {
        using var h = new CliHarness();
        IdentityStore.EnsureDataDirectory(h.Home);
        using var held = NodeLock.Acquire(h.Home);
        var result = h.Home_("peers", "list");
        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"the node at {h.Home} is not answering", result.Err, StringComparison.Ordinal);
        Assert.Single(result.ErrLines);
        await Task.CompletedTask;
    }

    internal static async Task UntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(20);
        }
    }

    /// <summary>A node in this process that holds the home's lock and serves its control socket, as <c>run</c> does.</summary>
    internal sealed class InProcessNode : IAsyncDisposable
    {
        private readonly NodeLock _lock;
        private readonly SecureMeshDatabase _db;

        private InProcessNode(NodeLock nodeLock, NodeIdentity identity, SecureMeshDatabase db, MeshNode node, ControlServer server)
        {
            _lock = nodeLock;
            Identity = identity;
            _db = db;
            Node = node;
            Server = server;
        }

        public NodeIdentity Identity { get; }

        public MeshNode Node { get; }

        public ControlServer Server { get; }

        public static async Task<InProcessNode> StartAsync(string home)
        {
            IdentityStore.EnsureDataDirectory(home);
            var nodeLock = NodeLock.Acquire(home);
            var identity = NodeIdentity.Generate();
            var db = SecureMeshDatabase.Open(home);
            var node = MeshNode.Start(identity, db, new NodeOptions { Home = home, Listen = new IPEndPoint(IPAddress.Loopback, 0), PollInterval = TimeSpan.FromMilliseconds(100) });
            var server = await ControlServer.StartAsync(node, db, new ControlServerOptions { Home = home }, CancellationToken.None);
            return new InProcessNode(nodeLock, identity, db, node, server);
        }

        public async ValueTask DisposeAsync()
        {
            await Server.DisposeAsync();
            await Node.DisposeAsync();
            _db.Dispose();
            Identity.Dispose();
            _lock.Dispose();
        }
    }
}
