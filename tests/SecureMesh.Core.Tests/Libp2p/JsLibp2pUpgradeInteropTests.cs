using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p;

namespace SecureMesh.Core.Tests.Libp2p;

/// <summary>
/// The connection upgrade against a stock js-libp2p 3.x node (tests/interop/libp2p-node.mjs): multistream-select
/// <c>/noise</c>, the Noise handshake with the stream muxers in its extensions, and yamux chosen in the handshake, both
/// ways. What js sends next must then read as yamux frames through our secured stream.
/// </summary>
public sealed class JsLibp2pUpgradeInteropTests : IDisposable
{
    private readonly NodeIdentity _me = NodeIdentity.Generate();

    private static CancellationToken Patience => new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token;

    public void Dispose() => _me.Dispose();

    [Fact]
    public async Task A_js_node_dials_our_upgrader_and_yamux_is_chosen_in_the_noise_handshake()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(4);
        var port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        await using var js = new JsLibp2pNode("dial", $"/ip4/127.0.0.1/tcp/{port}/p2p/{_me.PeerId}");

        using var socket = await listener.AcceptAsync(Patience);
        await using var connection = await new Upgrader(_me).UpgradeInboundAsync(new NetworkStream(socket, ownsSocket: true), Patience);

        var connected = await js.WaitForEventAsync("connected");
        Assert.Equal(connected.GetProperty("localPeerId").GetString(), connection.RemotePeerId.Text);
        Assert.Equal(_me.PeerId.Text, connected.GetProperty("peerId").GetString());
        Assert.Equal("/noise", connected.GetProperty("encryption").GetString());
        Assert.Equal(Upgrader.YamuxProtocolId, connected.GetProperty("multiplexer").GetString());
        Assert.Equal(Upgrader.YamuxProtocolId, connection.Muxer);
        Assert.True(connection.MuxerNegotiatedEarly);
        Assert.Contains(Upgrader.YamuxProtocolId, connection.Stream.RemoteStreamMuxers);

        // js opens its identify stream at once: a yamux frame from the client side (odd stream ID), decrypted by us.
        await AssertYamuxOpeningAsync(connection.Stream, fromClient: true);
    }

    [Fact]
    public async Task Our_upgrader_dials_a_js_node_and_yamux_is_chosen_in_the_noise_handshake()
    {
        var (js, peerId, _, port) = await JsLibp2pNode.ListenAsync();
        await using (js)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), Patience);
            await using var connection = await new Upgrader(_me).UpgradeOutboundAsync(new NetworkStream(socket, ownsSocket: true), PeerId.Parse(peerId), Patience);

            Assert.Equal(peerId, connection.RemotePeerId.Text);
            Assert.Equal(Upgrader.YamuxProtocolId, connection.Muxer);
            Assert.True(connection.MuxerNegotiatedEarly);
            var seen = await js.WaitForEventAsync("connection", e => e.GetProperty("peerId").GetString() == _me.PeerId.Text);
            Assert.Equal("inbound", seen.GetProperty("direction").GetString());
            Assert.Equal("/noise", seen.GetProperty("encryption").GetString());
            Assert.Equal(Upgrader.YamuxProtocolId, seen.GetProperty("multiplexer").GetString());

            // js identifies every new connection, inbound ones too: its stream comes from the server side (even ID).
            await AssertYamuxOpeningAsync(connection.Stream, fromClient: false);
        }
    }

    [Fact]
    public async Task Dialling_a_js_node_under_another_peer_id_is_refused_before_we_reveal_ourselves()
    {
        using var impostor = NodeIdentity.Generate();
        var (js, _, _, port) = await JsLibp2pNode.ListenAsync();
        await using (js)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), Patience);
            var e = await Assert.ThrowsAsync<SecureMeshException>(() =>
                new Upgrader(_me).UpgradeOutboundAsync(new NetworkStream(socket, ownsSocket: true), impostor.PeerId, Patience));
            Assert.Equal(SecureMeshErrorKind.Unauthorized, e.Kind);
            await Task.Delay(300);
            Assert.Empty(js.Events("connection"));
        }
    }

    /// <summary>Reads one yamux header (12 bytes: version, type, flags, stream ID, length) and checks it opens a stream or pings.</summary>
    private static async Task AssertYamuxOpeningAsync(Stream secured, bool fromClient)
    {
        var header = await Bytes.ReadExactlyAsync(secured, 12, Patience);
        Assert.Equal(0, header[0]);
        var type = header[1];
        var flags = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(2));
        var streamId = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(4));
        Assert.InRange(type, (byte)0, (byte)2);
        Assert.True((flags & 0x1) != 0, $"the first frame (type {type}) carries no SYN: flags {flags:x}");
        if (type == 2)
        {
            Assert.Equal(0u, streamId);
        }
        else
        {
            Assert.Equal(fromClient ? 1u : 0u, streamId % 2);
            Assert.NotEqual(0u, streamId);
        }
    }
}
