using System.Net;
using Microsoft.Extensions.Time.Testing;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Discovery;
using SecureMesh.Storage;

namespace SecureMesh.Node.Tests;

public sealed class BeaconTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);

    private static (FakeTimeProvider Time, BeaconValidator Validator, NodeIdentity Self) Receiver()
    {
        var time = new FakeTimeProvider(Now);
        var self = NodeIdentity.Generate();
        return (time, new BeaconValidator(self.PeerId, time), self);
    }

    private static long Ms(DateTimeOffset t) => t.ToUnixTimeMilliseconds();

    [Fact]
    public void A_signed_beacon_round_trips_with_who_and_where()
    {
        var (_, validator, self) = Receiver();
        using var selfKey = self;
        using var alice = NodeIdentity.Generate();
        var datagram = BeaconCodec.Encode(alice, 4747, Ms(Now));
        Assert.Equal(BeaconCodec.Length, datagram.Length);
        Assert.Equal(BeaconVerdict.Accepted, validator.Check(datagram, out var beacon));
        Assert.Equal(alice.PeerId, beacon.PeerId);
        Assert.Equal(4747, beacon.Port);
        Assert.Equal(Ms(Now), beacon.TimestampMs);
    }

    [Fact]
    public void Every_flipped_bit_is_rejected()
    {
        using var alice = NodeIdentity.Generate();
        var datagram = BeaconCodec.Encode(alice, 4747, Ms(Now));
        for (var bit = 0; bit < datagram.Length * 8; bit++)
        {
            var (_, validator, self) = Receiver();
            using var selfKey = self;
            var forged = (byte[])datagram.Clone();
            forged[bit / 8] ^= (byte)(1 << (bit % 8));
            Assert.NotEqual(BeaconVerdict.Accepted, validator.Check(forged, out _));
        }
    }

    [Fact]
    public void Another_nodes_Peer_ID_signed_with_our_key_is_a_bad_signature()
    {
        var (_, validator, self) = Receiver();
        using var selfKey = self;
        using var victim = NodeIdentity.Generate();
        using var attacker = NodeIdentity.Generate();
        var forged = BeaconCodec.Encode(attacker, victim.PublicKey, 4747, Ms(Now), new byte[16]);
        Assert.Equal(BeaconVerdict.BadSignature, validator.Check(forged, out _));
    }

    [Fact]
    public void A_replayed_or_older_beacon_is_ignored_and_a_newer_one_accepted()
    {
        var (time, validator, self) = Receiver();
        using var selfKey = self;
        using var alice = NodeIdentity.Generate();
        var first = BeaconCodec.Encode(alice, 4747, Ms(Now));
        var earlier = BeaconCodec.Encode(alice, 4747, Ms(Now) - 1000);
        Assert.Equal(BeaconVerdict.Accepted, validator.Check(first, out _));
        Assert.Equal(BeaconVerdict.Replay, validator.Check(first, out _));
        // Same timestamp, fresh nonce: still a replay of that moment.
        Assert.Equal(BeaconVerdict.Replay, validator.Check(BeaconCodec.Encode(alice, 4747, Ms(Now)), out _));
        Assert.Equal(BeaconVerdict.Replay, validator.Check(earlier, out _));
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(BeaconVerdict.Accepted, validator.Check(BeaconCodec.Encode(alice, 4747, Ms(time.GetUtcNow())), out _));
        // Long after the window the old beacon fails the time check instead.
        time.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(BeaconVerdict.Stale, validator.Check(first, out _));
    }

    [Theory]
    [InlineData(-61)]
    [InlineData(61)]
    [InlineData(-3600)]
    public void A_timestamp_outside_sixty_seconds_is_stale(int seconds)
    {
        var (_, validator, self) = Receiver();
        using var selfKey = self;
        using var alice = NodeIdentity.Generate();
        Assert.Equal(BeaconVerdict.Stale, validator.Check(BeaconCodec.Encode(alice, 4747, Ms(Now.AddSeconds(seconds))), out _));
        Assert.Equal(BeaconVerdict.Accepted, validator.Check(BeaconCodec.Encode(alice, 4747, Ms(Now.AddSeconds(seconds > 0 ? 59 : -59))), out _));
    }

    [Fact]
    public void Our_own_beacon_is_ignored()
    {
        var (_, validator, self) = Receiver();
        using var selfKey = self;
        Assert.Equal(BeaconVerdict.Own, validator.Check(BeaconCodec.Encode(self, 4747, Ms(Now)), out _));
    }

    [Fact]
    public void Garbage_truncated_oversized_and_mutated_datagrams_never_throw_and_never_pass()
    {
        var (_, validator, self) = Receiver();
        using var selfKey = self;
        using var alice = NodeIdentity.Generate();
        var good = BeaconCodec.Encode(alice, 4747, Ms(Now));
        Assert.Equal(BeaconVerdict.Malformed, validator.Check([], out _));
        Assert.Equal(BeaconVerdict.Malformed, validator.Check(good.AsSpan(0, good.Length - 1), out _));
        Assert.Equal(BeaconVerdict.Malformed, validator.Check([.. good, 0], out _));
        Assert.Equal(BeaconVerdict.Malformed, validator.Check(new byte[65_507], out _));
        var random = new Random(4748);
        for (var i = 0; i < 5000; i++)
        {
            byte[] datagram;
            if (i % 2 == 0)
            {
                datagram = new byte[random.Next(0, 300)];
                random.NextBytes(datagram);
                if (datagram.Length >= 5)
                {
                    "SMBc"u8.CopyTo(datagram);
                    datagram[4] = 1;
                }
            }
            else
            {
                datagram = (byte[])good.Clone();
                for (var n = random.Next(1, 6); n > 0; n--)
                {
                    datagram[random.Next(datagram.Length)] = (byte)random.Next(256);
                }
                if (datagram.AsSpan().SequenceEqual(good))
                {
                    continue;
                }
            }
            Assert.NotEqual(BeaconVerdict.Accepted, validator.Check(datagram, out _));
        }
    }

    [Fact]
    public void The_replay_memory_is_bounded_and_forgets_only_expired_peers()
    {
        var time = new FakeTimeProvider(Now);
        using var self = NodeIdentity.Generate();
        var validator = new BeaconValidator(self.PeerId, time, capacity: 3);
        var peers = Enumerable.Range(0, 4).Select(_ => NodeIdentity.Generate()).ToList();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                Assert.Equal(BeaconVerdict.Accepted, validator.Check(BeaconCodec.Encode(peers[i], 1, Ms(Now)), out _));
            }
            Assert.Equal(BeaconVerdict.CacheFull, validator.Check(BeaconCodec.Encode(peers[3], 1, Ms(Now)), out _));
            time.Advance(TimeSpan.FromSeconds(90));
            Assert.Equal(BeaconVerdict.Accepted, validator.Check(BeaconCodec.Encode(peers[3], 1, Ms(time.GetUtcNow())), out _));
            Assert.Equal(1, validator.Tracked);
        }
        finally
        {
            peers.ForEach(p => p.Dispose());
        }
    }
}

public sealed class DiscoveryHandlingTests
{
    private static readonly TimeSpan Second = TimeSpan.FromSeconds(1);

    [Fact]
    public async Task A_trusted_peers_beacon_records_its_address_and_dials_it()
    {
        await using var node = TestNode.Start();
        await using var friend = TestNode.Start();
        node.Db.Trust.AddPeer(friend.Identity.PeerId, "friend", trusted: true);
        friend.Db.Trust.AddPeer(node.Identity.PeerId, trusted: true);
        await using var discovery = new DiscoveryService(node.Identity, node.Node, node.Db, new DiscoveredPeers(), new DiscoveryOptions { Interval = TimeSpan.Zero.Add(TimeSpan.FromMilliseconds(1)) });

        // Two beacons, a few intervals apart, so either side of the Peer ID tie-break dials.
        var beacon = BeaconCodec.Encode(friend.Identity, (ushort)friend.EndPoint.Port, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 10);
        Assert.Equal(BeaconVerdict.Accepted, discovery.HandleDatagram(beacon, new IPEndPoint(IPAddress.Loopback, 4748)));
        await Task.Delay(20);
        Assert.Equal(BeaconVerdict.Accepted, discovery.HandleDatagram(BeaconCodec.Encode(friend.Identity, (ushort)friend.EndPoint.Port, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()), new IPEndPoint(IPAddress.Loopback, 4748)));

        await Wait.UntilAsync(() => node.Node.GetSession(friend.Identity.PeerId) is not null, 5 * Second, "the dial to the discovered peer");
        var record = node.Db.Trust.GetPeer(friend.Identity.PeerId)!;
        Assert.Contains(record.Addresses, a => a.Address == $"127.0.0.1:{friend.EndPoint.Port}");
        Assert.Equal(PeerState.Trusted, record.State);
    }

    [Fact]
    public async Task An_unknown_peers_beacon_only_lists_it_as_discovered_and_a_blocked_one_is_ignored()
    {
        await using var node = TestNode.Start();
        using var stranger = NodeIdentity.Generate();
        using var enemy = NodeIdentity.Generate();
        node.Db.Trust.Block(enemy.PeerId, "test");
        var registry = new DiscoveredPeers();
        await using var discovery = new DiscoveryService(node.Identity, node.Node, node.Db, registry, new DiscoveryOptions());
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        discovery.HandleDatagram(BeaconCodec.Encode(stranger, 4000, now), new IPEndPoint(IPAddress.Parse("192.0.2.9"), 4748));
        discovery.HandleDatagram(BeaconCodec.Encode(enemy, 4001, now), new IPEndPoint(IPAddress.Parse("192.0.2.10"), 4748));

        Assert.Null(node.Db.Trust.GetPeer(stranger.PeerId));
        var found = Assert.Single(registry.Snapshot());
        Assert.Equal(stranger.PeerId, found.PeerId);
        Assert.Equal("192.0.2.9:4000", found.EndPoint.ToString());

        var control = new Control.NodeControlService(node.Home, node.Db, node.Node, discovery, registry);
        var peers = await control.ListPeersAsync(null, CancellationToken.None);
        Assert.Contains(peers, p => p.PeerId == stranger.PeerId.Text && p.State == "discovered" && p.Addresses.Single() == "192.0.2.9:4000");
        Assert.Empty(node.Db.Trust.GetPeer(enemy.PeerId)!.Addresses);
    }

    [Fact]
    public async Task A_forged_beacon_naming_a_trusted_peer_changes_nothing()
    {
        await using var node = TestNode.Start();
        using var friend = NodeIdentity.Generate();
        using var attacker = NodeIdentity.Generate();
        node.Db.Trust.AddPeer(friend.PeerId, trusted: true);
        var registry = new DiscoveredPeers();
        await using var discovery = new DiscoveryService(node.Identity, node.Node, node.Db, registry, new DiscoveryOptions());
        var forged = BeaconCodec.Encode(attacker, friend.PublicKey, 6666, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), new byte[16]);
        Assert.Equal(BeaconVerdict.BadSignature, discovery.HandleDatagram(forged, new IPEndPoint(IPAddress.Parse("192.0.2.66"), 4748)));
        Assert.Empty(node.Db.Trust.GetPeer(friend.PeerId)!.Addresses);
        Assert.Empty(registry.Snapshot());
        Assert.Equal(1, discovery.DatagramsIgnored);
    }
}
