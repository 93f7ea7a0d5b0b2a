using System.Net;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Discovery;

namespace SecureMesh.Node.Tests;

/// <summary>
/// Issue 14, finding 10 (discovery): the verification budget was charged before the length and magic checks, so a few
/// hundred junk datagrams a second from any LAN host starved real beacons.
/// </summary>
public sealed class DiscoveryFloodTests
{
    [Fact]
    public async Task A_flood_of_junk_datagrams_spends_no_budget_and_a_real_beacon_is_still_accepted()
    {
        await using var node = TestNode.Start();
        using var friend = NodeIdentity.Generate();
        var registry = new DiscoveredPeers();
        await using var discovery = new DiscoveryService(node.Identity, node.Node, node.Db, registry, new DiscoveryOptions());
        var junkSource = new IPEndPoint(IPAddress.Parse("192.0.2.66"), 4748);
        var random = new Random(14);
        var real = BeaconCodec.Encode(friend, 4747, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        for (var i = 0; i < 5000; i++)
        {
            byte[] junk;
            switch (i % 4)
            {
                case 0: // random bytes, random length
                    junk = new byte[random.Next(0, 300)];
                    random.NextBytes(junk);
                    break;
                case 1: // beacon length, wrong magic
                    junk = new byte[BeaconCodec.Length];
                    random.NextBytes(junk);
                    break;
                case 2: // right magic, another version
                    junk = (byte[])real.Clone();
                    junk[4] = 2;
                    break;
                default: // one byte short
                    junk = real[..^1];
                    break;
            }
            Assert.Equal(BeaconVerdict.Malformed, discovery.HandleDatagram(junk, junkSource));
        }
        Assert.Equal(BeaconVerdict.Accepted, discovery.HandleDatagram(real, new IPEndPoint(IPAddress.Parse("192.0.2.7"), 4748)));
        Assert.Contains(registry.Snapshot(), p => p.PeerId == friend.PeerId);
    }

    [Fact]
    public async Task Well_formed_forgeries_from_one_host_cannot_spend_the_budget_of_everyone_else()
    {
        await using var node = TestNode.Start();
        using var friend = NodeIdentity.Generate();
        using var attacker = NodeIdentity.Generate();
        var registry = new DiscoveredPeers();
        await using var discovery = new DiscoveryService(node.Identity, node.Node, node.Db, registry, new DiscoveryOptions());
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var forged = BeaconCodec.Encode(attacker, friend.PublicKey, 6666, now, new byte[16]);
        var verdicts = new List<BeaconVerdict>();
        for (var i = 0; i < 500; i++)
        {
            verdicts.Add(discovery.HandleDatagram(forged, new IPEndPoint(IPAddress.Parse("192.0.2.66"), 4748)));
        }
        // Only a few were worth a signature check; the rest were refused on this source's budget.
        Assert.InRange(verdicts.Count(v => v == BeaconVerdict.BadSignature), 1, 20);
        Assert.Equal(BeaconVerdict.Accepted, discovery.HandleDatagram(BeaconCodec.Encode(friend, 4747, now), new IPEndPoint(IPAddress.Parse("192.0.2.7"), 4748)));
    }

    [Fact]
    public void A_stale_or_own_beacon_is_dropped_by_the_cheap_checks()
    {
        using var self = NodeIdentity.Generate();
        using var alice = NodeIdentity.Generate();
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        var validator = new BeaconValidator(self.PeerId, time);
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        Assert.Equal(BeaconVerdict.Accepted, validator.Precheck(BeaconCodec.Encode(alice, 4747, now)));
        Assert.Equal(BeaconVerdict.Stale, validator.Precheck(BeaconCodec.Encode(alice, 4747, now - 3_600_000)));
        Assert.Equal(BeaconVerdict.Own, validator.Precheck(BeaconCodec.Encode(self, 4747, now)));
        Assert.Equal(BeaconVerdict.Malformed, validator.Precheck(new byte[3]));
    }
}
