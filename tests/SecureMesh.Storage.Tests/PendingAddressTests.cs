using System.Net;

namespace SecureMesh.Storage.Tests;

/// <summary>
/// Issue 14, finding 9: a pending stranger's address list grew with every handshake (each one's ephemeral source port
/// was stored), and the stranger cap counted peers while the rows grew without bound.
/// </summary>
public sealed class PendingAddressTests
{
    [Fact]
    public void Handshakes_from_one_host_keep_one_address_without_the_port()
    {
        using var t = new TestDatabase();
        var stranger = TestDatabase.NewPeer();
        for (var port = 40000; port < 40050; port++)
        {
            t.Trust.RecordPending(stranger, new IPEndPoint(IPAddress.Parse("192.0.2.9"), port));
            t.Time.Advance(TimeSpan.FromSeconds(1));
        }
        t.Trust.RecordPending(stranger, new IPEndPoint(IPAddress.Parse("2001:db8::9"), 50000));
        Assert.Equal(["192.0.2.9", "[2001:db8::9]"], t.Trust.GetPeer(stranger)!.Addresses.Select(a => a.Address).Order(StringComparer.Ordinal));
        Assert.Equal(2, t.Count("peer_addresses"));
    }

    [Fact]
    public void A_peer_keeps_only_its_most_recent_seen_addresses_and_every_typed_in_one()
    {
        using var t = new TestDatabase();
        var peer = TestDatabase.NewPeer();
        t.Trust.AddPeer(peer, null, ["198.51.100.1:4747"]);
        for (var i = 1; i <= 10; i++)
        {
            t.Trust.RecordPending(peer, new IPEndPoint(IPAddress.Parse($"192.0.2.{i}"), 30000 + i));
            t.Time.Advance(TimeSpan.FromSeconds(1));
        }
        var addresses = t.Trust.GetPeer(peer)!.Addresses;
        Assert.Equal(["192.0.2.10", "192.0.2.7", "192.0.2.8", "192.0.2.9"],
            addresses.Where(a => a.Source == AddressSource.Seen).Select(a => a.Address).Order(StringComparer.Ordinal));
        Assert.Contains(addresses, a => a.Address == "198.51.100.1:4747" && a.Source == AddressSource.User);
        Assert.Equal(TrustStore.MaxSeenAddresses + 1, addresses.Count);
    }

    [Fact]
    public void Strangers_can_hold_no_more_rows_than_the_cap_allows()
    {
        using var t = new TestDatabase();
        var strangers = Enumerable.Range(0, 12).Select(_ => TestDatabase.NewPeer()).ToList();
        var capped = new TestDatabaseCap(t, 5);
        foreach (var (peer, n) in strangers.Select((p, n) => (p, n)))
        {
            for (var i = 0; i < 8; i++)
            {
                capped.Trust.RecordPending(peer, new IPEndPoint(IPAddress.Parse($"10.{n}.0.{i + 1}"), 1000 + i));
                t.Time.Advance(TimeSpan.FromMilliseconds(10));
            }
        }
        Assert.Equal(5, t.Count("peers"));
        Assert.True(t.Count("peer_addresses") <= 5 * TrustStore.MaxSeenAddresses, $"{t.Count("peer_addresses")} address rows");
    }

    private sealed class TestDatabaseCap
    {
        public TestDatabaseCap(TestDatabase t, int cap)
        {
            Trust = t.Trust;
            Trust.MaxPendingPeers = cap;
        }

        public TrustStore Trust { get; }
    }
}
