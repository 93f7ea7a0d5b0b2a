using System.Net;
using System.Net.Sockets;
using SecureMesh.Core;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Network;

namespace SecureMesh.Node.Tests;

/// <summary>
/// Issue 14, finding 3, against a real listener: a block written as an IPv4-mapped IPv6 address (or range) refuses a
/// connection from the IPv4 address it names, before any handshake.
/// </summary>
public sealed class MappedAddressBlockTests
{
    [Theory]
    [InlineData("::ffff:127.0.0.5")]
    [InlineData("::ffff:127.0.0.4/126")]
    public async Task A_mapped_block_refuses_a_connection_from_the_ipv4_address_before_the_handshake(string block)
    {
        await using var server = TestNode.Start();
        using var friend = NodeIdentity.Generate();
        server.Db.Trust.AddPeer(friend.PeerId, trusted: true);
        server.Db.Trust.BlockAddress(block, "mapped spelling");

        // From 127.0.0.5: closed with nothing but a close, though the key is trusted.
        var refused = await Assert.ThrowsAsync<SecureMeshException>(() => DialFromAsync(IPAddress.Parse("127.0.0.5"), friend, server));
        Assert.NotNull(refused.Message);
        Assert.Empty(server.Node.Sessions);
        Assert.Contains(server.Db.Audit.List(), e => e.Event == "handshake.refused"
            && e.Detail.Contains("127.0.0.5", StringComparison.Ordinal) && e.Detail.Contains("blocked range", StringComparison.Ordinal));

        // A neighbour outside the range still gets its session.
        await using var allowed = await DialFromAsync(IPAddress.Parse("127.0.0.9"), friend, server);
        await Wait.UntilAsync(() => server.Node.GetSession(friend.PeerId) is not null, TimeSpan.FromSeconds(5), "the session from 127.0.0.9");
    }

    /// <summary>Dials <paramref name="server"/> from a chosen loopback source address.</summary>
    internal static async Task<PeerLink> DialFromAsync(IPAddress source, NodeIdentity me, TestNode server)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(new IPEndPoint(source, 0));
            await socket.ConnectAsync(server.EndPoint);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        var stream = new NetworkStream(socket, ownsSocket: true);
        try
        {
            return await PeerLink.UpgradeAsync(me, stream, server.Identity.PeerId, TimeSpan.FromSeconds(3), CancellationToken.None);
        }
        catch
        {
            await stream.DisposeAsync();
            throw;
        }
    }
}
