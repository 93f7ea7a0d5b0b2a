using Microsoft.Extensions.Time.Testing;
using SecureMesh.Core.Identity;
using SecureMesh.Storage;

namespace SecureMesh.Node.Tests;

/// <summary>
/// Issue 16 (handshakes): last-seen times are written in one transaction per poll instead of one synced commit per
/// accepted session; they still land, the first session with a peer is still told apart, an outbound address is kept.
/// </summary>
public sealed class SeenPeersTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("securemesh-seen-").FullName;
    private readonly SecureMeshDatabase _db;

    public SeenPeersTests() => _db = SecureMeshDatabase.Open(_home);

    [Fact]
    public void Sessions_noted_between_polls_are_written_in_one_commit()
    {
        using var a = NodeIdentity.Generate();
        using var b = NodeIdentity.Generate();
        using var stranger = NodeIdentity.Generate();
        _db.Trust.AddPeer(a.PeerId, trusted: true);
        _db.Trust.AddPeer(b.PeerId, trusted: true);
        var seen = new SeenPeers(_db);

        seen.Note(a.PeerId, "/ip4/127.0.0.1/tcp/4001");
        seen.Note(b.PeerId, null);
        seen.Note(a.PeerId, null);
        seen.Note(stranger.PeerId, null);
        Assert.Null(_db.Trust.GetPeer(a.PeerId)!.LastSeen);
        var stamp = _db.ChangeStamp();
        seen.Flush();

        Assert.Equal(stamp + 1, _db.ChangeStamp());
        Assert.Equal(0, seen.Pending);
        Assert.NotNull(_db.Trust.GetPeer(a.PeerId)!.LastSeen);
        Assert.NotNull(_db.Trust.GetPeer(b.PeerId)!.LastSeen);
        // The outbound session's address survives a later inbound session of the same peer in the same batch.
        Assert.Contains(_db.Trust.GetPeer(a.PeerId)!.Addresses, x => x.Source == AddressSource.Seen && x.LastSeen is not null);
        Assert.Null(_db.Trust.GetPeer(stranger.PeerId));

        seen.Flush();
        Assert.Equal(stamp + 1, _db.ChangeStamp());
    }

    [Fact]
    public void A_session_is_stamped_when_it_was_noted_not_when_the_poll_writes_it()
    {
        var home = Directory.CreateTempSubdirectory("securemesh-seen-clock-").FullName;
        try
        {
            var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 4, 1, 0, 0, TimeSpan.Zero));
            using var db = SecureMeshDatabase.Open(home, time);
            using var peer = NodeIdentity.Generate();
            db.Trust.AddPeer(peer.PeerId, trusted: true);
            var seen = new SeenPeers(db);

            var outbound = time.GetUtcNow();
            seen.Note(peer.PeerId, "/ip4/127.0.0.1/tcp/4001");
            time.Advance(TimeSpan.FromSeconds(1));
            var inbound = time.GetUtcNow();
            seen.Note(peer.PeerId, null);
            // The poll comes late (under load); meanwhile another address of the peer worked.
            time.Advance(TimeSpan.FromSeconds(2));
            db.LearnedAddresses.Learn(peer.PeerId, ["/ip4/127.0.0.2/tcp/4002"], "exchange");
            db.LearnedAddresses.MarkSuccess(peer.PeerId, "/ip4/127.0.0.2/tcp/4002");
            time.Advance(TimeSpan.FromSeconds(2));
            seen.Flush();

            var record = db.Trust.GetPeer(peer.PeerId)!;
            Assert.Equal(inbound, record.LastSeen);
            Assert.Equal(outbound, Assert.Single(record.Addresses, x => x.Source == AddressSource.Seen).LastSeen);
            // So the address that worked last is still dialled first.
            Assert.Equal("/ip4/127.0.0.2/tcp/4002", SecureMesh.Node.Transfer.PeerConnector.DialOrder(record, db.LearnedAddresses.List(peer.PeerId))[0]);
        }
        finally
        {
            Directory.Delete(home, recursive: true);
        }
    }

    [Fact]
    public void Only_the_first_session_ever_with_a_peer_is_first()
    {
        using var fresh = NodeIdentity.Generate();
        using var known = NodeIdentity.Generate();
        _db.Trust.AddPeer(fresh.PeerId, trusted: true);
        _db.Trust.AddPeer(known.PeerId, trusted: true);
        _db.Trust.TouchSeen(known.PeerId);
        var seen = new SeenPeers(_db);

        Assert.True(seen.Note(fresh.PeerId, null));
        Assert.False(seen.Note(fresh.PeerId, null));
        Assert.False(seen.Note(known.PeerId, null));
        seen.Flush();
        Assert.False(new SeenPeers(_db).Note(fresh.PeerId, null));
    }

    [Fact]
    public async Task A_trusted_peer_s_session_is_recorded_as_seen_by_the_node()
    {
        await using var server = TestNode.Start();
        using var friend = NodeIdentity.Generate();
        server.Db.Trust.AddPeer(friend.PeerId, trusted: true);

        await using var connection = await Wait.DialAsync(friend, server);
        await Wait.UntilAsync(() => server.Db.Trust.GetPeer(friend.PeerId)!.LastSeen is not null, TimeSpan.FromSeconds(10), "the last-seen time");
    }

    public void Dispose()
    {
        _db.Dispose();
        Directory.Delete(_home, recursive: true);
    }
}
