using System.Buffers.Binary;
using System.Net.Sockets;
using SecureMesh.Core;
using SecureMesh.Core.Channel;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p;
using SecureMesh.Core.Libp2p.Multistream;
using SecureMesh.Core.Noise;
using static SecureMesh.Node.Tests.Connections.TransportKit;

namespace SecureMesh.Node.Tests.Connections;

/// <summary>
/// Identity misbinding (a genuine, correctly signed payload presented over someone else's Noise static key) and
/// downgrade (a peer on another Noise protocol) against the production stack: both end without a connection, in both
/// roles. (Ported from the pre-libp2p channel's BindingAndDowngradeTests.)
/// </summary>
public sealed class TransportBindingAndDowngradeTests : TransportTestBase
{
    private static readonly string[] Muxers = [Upgrader.YamuxProtocolId];

    [Fact]
    public async Task A_victims_genuine_payload_over_the_attackers_static_key_is_refused_by_the_responder()
    {
        // The victim's payload is what it sends every peer it meets: its identity key and a valid signature, but over
        // the victim's own static key. Mallory presents it with a static key whose private half he holds.
        var victimPayload = LocalStaticKey.For(_client).PayloadWith(Muxers);
        using var mallory = LocalStaticKey.CreateForTest(X25519KeyPair.Generate());
        var socket = await ConnectRawAsync(Transport.LocalEndPoint);
        await using (var secured = await HandshakeByHandAsync(new NetworkStream(socket, true), true, mallory, victimPayload, _server.PeerId))
        {
            Assert.True(await EndsWithinAsync(secured), "the responder closes the connection");
        }
        await WaitUntilAsync(() => Transport.FailedHandshakes == 1, "the transport to refuse the misbound payload");
        Assert.False(Transport.Connections.TryRead(out _), "no connection may come out of a misbound handshake");

        // The same payload over the key it was signed for is accepted: only the binding was wrong.
        await using var honest = await DialAsync(_client, Transport.LocalEndPoint, _server.PeerId);
        await using var served = await AcceptAsync(Transport);
        Assert.Equal(_client.PeerId, served.RemotePeerId);
    }

    [Fact]
    public async Task A_responder_presenting_the_dialled_peers_genuine_payload_over_its_own_static_key_is_refused()
    {
        var serverPayload = LocalStaticKey.For(_server).PayloadWith(Muxers);
        using var mallory = LocalStaticKey.CreateForTest(X25519KeyPair.Generate());
        var (dialling, accepted) = await ConnectedPairAsync();
        var responder = HandshakeByHandAsync(accepted, false, mallory, serverPayload, null);
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => new Upgrader(_client).UpgradeOutboundAsync(dialling, _server.PeerId, Timeout()));
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        Assert.Contains("signature", e.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<SecureMeshException>(() => responder);
    }

    public static TheoryData<string, bool> ProtocolNames => new()
    {
        { HandshakeState.ProtocolName, true }, // the control: our own protocol, driven by hand, works
        { "Noise_XX_25519_AESGCM_SHA256", false },
        { "Noise_XX_25519_ChaChaPoly_BLAKE2s", false },
        { "Noise_NN_25519_ChaChaPoly_SHA256", false },
        { "Noise_XX_448_ChaChaPoly_SHA512", false },
    };

    [Theory]
    [MemberData(nameof(ProtocolNames))]
    public async Task A_responder_on_another_noise_protocol_is_refused_by_the_initiator(string protocolName, bool accepted)
    {
        var (dialling, theirs) = await ConnectedPairAsync();
        await using var responderEnd = theirs;
        var responder = Task.Run(async () =>
        {
            await MultistreamSelect.NegotiateAsync(theirs, [Upgrader.NoiseProtocolId], Timeout());
            using var key = X25519KeyPair.Generate();
            using var handshake = new HandshakeState(false, default, key, null, protocolName);
            var payload = new byte[HandshakeState.MaxMessageLength];
            Assert.True(handshake.TryReadMessage(await ReadFrameAsync(theirs), payload, out _));
            // A genuine, correctly signed payload for the dialled identity: only the protocol differs.
            var signed = NoiseHandshakePayload.Create(_server, key.PublicKey, Muxers).Encode();
            var message = new byte[HandshakeState.MaxMessageLength];
            var length = handshake.WriteMessage(signed, message);
            await theirs.WriteAsync(Frame(message.AsSpan(0, length)));
            await theirs.FlushAsync();
        });
        if (accepted)
        {
            await using var connection = await new Upgrader(_client).UpgradeOutboundAsync(dialling, _server.PeerId, Timeout());
            Assert.Equal(_server.PeerId, connection.RemotePeerId);
        }
        else
        {
            var e = await Assert.ThrowsAsync<SecureMeshException>(() => new Upgrader(_client).UpgradeOutboundAsync(dialling, _server.PeerId, Timeout()));
            Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
            Assert.Contains("handshake message 2", e.Message, StringComparison.Ordinal);
        }
        await responder;
    }

    [Theory]
    [MemberData(nameof(ProtocolNames))]
    public async Task An_initiator_on_another_noise_protocol_learns_nothing_and_gets_no_connection(string protocolName, bool accepted)
    {
        using var socket = await ConnectAtNoiseAsync(Transport.LocalEndPoint);
        await using var stream = new NetworkStream(socket, false);
        using var key = X25519KeyPair.Generate();
        using var handshake = new HandshakeState(true, default, key, null, protocolName);
        var message = new byte[HandshakeState.MaxMessageLength];
        var length = handshake.WriteMessage(default, message);
        await stream.WriteAsync(Frame(message.AsSpan(0, length)));
        var payload = new byte[HandshakeState.MaxMessageLength];
        var read = handshake.TryReadMessage(await ReadFrameAsync(stream), payload, out var payloadLength);
        // Our responder's static key and identity are encrypted under keys bound to the protocol name.
        Assert.Equal(accepted, read);
        if (read)
        {
            Assert.Equal(_server.PeerId, VerifyPayload(payload.AsSpan(0, payloadLength), handshake.RemoteStaticPublicKey));
            return;
        }
        // The best such a peer can do is send something as a third message: refused, and nothing is accepted.
        var garbage = new byte[48 + 16 + 100];
        Random.Shared.NextBytes(garbage);
        await stream.WriteAsync(Frame(garbage));
        Assert.True(await WaitForCloseAsync(socket, TimeSpan.FromSeconds(3)), "the transport closes the connection");
        await WaitUntilAsync(() => Transport.FailedHandshakes == 1, "the failed upgrade to be counted");
        Assert.False(Transport.Connections.TryRead(out _));
        await AssertServesGoodClientAsync(Transport, _server);
    }

    private static PeerId VerifyPayload(ReadOnlySpan<byte> payload, ReadOnlySpan<byte> remoteStatic) => NoiseHandshake.VerifyPayload(payload, remoteStatic).Peer;

    private static async Task<byte[]> ReadFrameAsync(Stream stream)
    {
        var header = new byte[2];
        await stream.ReadExactlyAsync(header, Timeout());
        var body = new byte[BinaryPrimitives.ReadUInt16BigEndian(header)];
        await stream.ReadExactlyAsync(body, Timeout());
        return body;
    }
}
