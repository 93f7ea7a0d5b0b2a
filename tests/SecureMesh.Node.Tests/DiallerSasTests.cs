using System.Text.Json;
using SecureMesh.Node.Control;
using SecureMesh.Node.Tests.Transfer;

namespace SecureMesh.Node.Tests;

/// <summary>Issue 15: the dialling side sees the short authentication string too, even when the other side hangs up.</summary>
public sealed class DiallerSasTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_dialler_not_yet_trusted_by_the_other_side_keeps_the_same_words_in_status_and_logs_them_once()
    {
        var logs = new CapturedLogs();
        await using var alice = TestNode.Start();
        await using var bob = TestNode.Start(loggers: logs);
        // Bob added and trusted Alice; Alice has not heard of Bob yet.
        bob.Db.Trust.AddPeer(alice.Identity.PeerId, "alice", [$"127.0.0.1:{alice.EndPoint.Port}"], trusted: true);

        for (var i = 0; i < 3; i++)
        {
            await bob.Node.ConnectAsync(alice.Identity.PeerId, alice.EndPoint, CancellationToken.None);
            await Wait.UntilAsync(() => bob.Node.GetSession(alice.Identity.PeerId) is null, Patience, "Alice to hang up");
        }

        // Alice's side: Bob is pending, and each handshake's words are in her audit log (each connection has its own).
        var aliceWords = alice.Db.Audit.List().Where(e => e.Event == "handshake.pending")
            .Select(e => e.Detail[(e.Detail.IndexOf("SAS ", StringComparison.Ordinal) + 4)..]).ToList();
        Assert.Equal(3, aliceWords.Count);
        Assert.Equal(3, aliceWords.Distinct(StringComparer.Ordinal).Count());
        var aliceSas = aliceWords[^1];

        // Bob's side: the same words, though no session is open.
        var note = Assert.Single(bob.Node.RecentHandshakes);
        Assert.Equal(aliceSas, note.Sas);
        Assert.Equal(ConnectionDirection.Outbound, note.Direction);
        Assert.NotNull(note.Ended);
        var status = await new NodeControlService(bob.Home, bob.Db, bob.Node).GetStatusAsync(CancellationToken.None);
        Assert.Empty(status.Connections);
        var shown = Assert.Single(status.Handshakes!);
        Assert.Equal(aliceSas, shown.Sas);
        Assert.Equal("alice", shown.Name);
        using (var json = JsonDocument.Parse(JsonSerializer.Serialize(status, ControlJsonContext.Default.NodeStatus)))
        {
            Assert.Equal(aliceSas, json.RootElement.GetProperty("handshakes")[0].GetProperty("sas").GetString());
        }

        // One line with the words on the first session (those Alice logged first), not one per redial.
        var line = Assert.Single(logs.Entries, e => e.Id is 112 or 113);
        Assert.EndsWith(aliceWords[0], line.Message, StringComparison.Ordinal);
        Assert.Contains(alice.Identity.PeerId.Text, line.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_known_peer_that_hangs_up_before_its_hello_gets_the_words_logged_once()
    {
        var logs = new CapturedLogs();
        await using var alice = TestNode.Start();
        await using var bob = TestNode.Start(loggers: logs);
        bob.Db.Trust.AddPeer(alice.Identity.PeerId, "alice", trusted: true);
        bob.Db.Trust.TouchSeen(alice.Identity.PeerId);
        for (var i = 0; i < 2; i++)
        {
            await bob.Node.ConnectAsync(alice.Identity.PeerId, alice.EndPoint, CancellationToken.None);
            await Wait.UntilAsync(() => bob.Node.GetSession(alice.Identity.PeerId) is null, Patience, "Alice to hang up");
        }
        Assert.Equal(0, logs.Count(112));
        var line = Assert.Single(logs.Entries, e => e.Id == 113);
        var first = alice.Db.Audit.List().First(e => e.Event == "handshake.pending").Detail;
        Assert.EndsWith(first[(first.IndexOf("SAS ", StringComparison.Ordinal) + 4)..], line.Message, StringComparison.Ordinal);
        Assert.Contains("hung up right after the handshake", line.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Both_sides_of_a_live_session_show_the_same_sas_in_status()
    {
        await using var alice = TransferNode.Start();
        await using var bob = TransferNode.Start();
        await bob.ConnectAsync(alice);
        var bobStatus = await new NodeControlService(bob.Home, bob.Db, bob.Node).GetStatusAsync(CancellationToken.None);
        var aliceStatus = await new NodeControlService(alice.Home, alice.Db, alice.Node).GetStatusAsync(CancellationToken.None);
        var dialler = Assert.Single(bobStatus.Connections);
        var listener = Assert.Single(aliceStatus.Connections);
        Assert.Equal("outbound", dialler.Direction);
        Assert.Equal(listener.Sas, dialler.Sas);
        using var json = JsonDocument.Parse(JsonSerializer.Serialize(bobStatus, ControlJsonContext.Default.NodeStatus));
        Assert.Equal(listener.Sas, json.RootElement.GetProperty("connections")[0].GetProperty("sas").GetString());
        // A live peer is not listed again among past handshakes.
        Assert.Empty(bobStatus.Handshakes!);
    }
}
