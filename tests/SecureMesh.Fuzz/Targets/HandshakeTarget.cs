using System.Buffers;
using SecureMesh.Core;
using SecureMesh.Core.Channel;
using SecureMesh.Core.Noise;

namespace SecureMesh.Fuzz.Targets;

/// <summary>
/// The Noise XX handshake messages as a peer can send them. The first input byte picks what the rest is:
/// <list type="number">
/// <item>0: message 1 (<c>-> e</c>) read by a responder, which then answers with message 2;</item>
/// <item>1: message 2 (<c>&lt;- e, ee, s, es</c>) read by an initiator after its message 1, and its payload checked;</item>
/// <item>2: the plaintext payload of message 2: a real responder encrypts it, the initiator decrypts and checks it
///   (so the payload parser is reached through the real decryption, not only directly as in <see cref="PayloadTarget"/>);</item>
/// <item>3: the plaintext payload of message 3 (<c>-> s, se</c>), read and checked by the responder.</item>
/// </list>
/// All keys are fixed, so a given input always takes the same path.
/// </summary>
internal static class HandshakeTarget
{
    public static FuzzTarget Target { get; } = new("handshake", "Noise XX handshake messages 1-3 and their libp2p payloads", Run, Seeds);

    public static bool Run(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return false;
        }
        var body = data[1..];
        var buffers = new Buffers();
        try
        {
            return (data[0] % 4) switch
            {
                0 => ResponderReadsMessage1(body, buffers),
                1 => InitiatorReadsMessage2(body, buffers),
                2 => InitiatorReadsPayloadOfMessage2(body, buffers),
                _ => ResponderReadsPayloadOfMessage3(body, buffers),
            };
        }
        finally
        {
            buffers.Dispose();
        }
    }

    private static bool ResponderReadsMessage1(ReadOnlySpan<byte> message, Buffers buffers)
    {
        using var responder = Responder();
        if (!responder.TryReadMessage(message, buffers.Payload, out var length))
        {
            return false;
        }
        if (length != message.Length - HandshakeState.Overhead(0))
        {
            throw Expected.Finding($"message 1 of {message.Length} bytes gave a payload of {length}");
        }
        try
        {
            // A low-order ephemeral key is refused when the responder mixes it in.
            responder.WriteMessage(FixedPayloads.Responder, buffers.Message);
        }
        catch (SecureMeshException e) when (Expected.IsProtocolError(e))
        {
            return false;
        }
        return true;
    }

    private static bool InitiatorReadsMessage2(ReadOnlySpan<byte> message, Buffers buffers)
    {
        using var initiator = Initiator();
        initiator.WriteMessage(default, buffers.Message);
        if (!initiator.TryReadMessage(message, buffers.Payload, out var length))
        {
            return false;
        }
        return Verify(buffers.Payload.AsSpan(0, length), initiator.RemoteStaticPublicKey);
    }

    private static bool InitiatorReadsPayloadOfMessage2(ReadOnlySpan<byte> payload, Buffers buffers)
    {
        if (payload.Length > HandshakeState.MaxPayloadLength(1))
        {
            return false;
        }
        using var initiator = Initiator();
        using var responder = Responder();
        Exchange(initiator, responder, default, buffers, 1);
        var received = Exchange(responder, initiator, payload, buffers, 2);
        if (!Verify(received, initiator.RemoteStaticPublicKey))
        {
            return false;
        }
        // The payload passed: finish the handshake, as the channel would.
        Exchange(initiator, responder, FixedPayloads.Initiator, buffers, 3);
        using var a = initiator.Split();
        using var b = responder.Split();
        return true;
    }

    private static bool ResponderReadsPayloadOfMessage3(ReadOnlySpan<byte> payload, Buffers buffers)
    {
        if (payload.Length > HandshakeState.MaxPayloadLength(2))
        {
            return false;
        }
        using var initiator = Initiator();
        using var responder = Responder();
        Exchange(initiator, responder, default, buffers, 1);
        Exchange(responder, initiator, FixedPayloads.Responder, buffers, 2);
        var received = Exchange(initiator, responder, payload, buffers, 3);
        return Verify(received, responder.RemoteStaticPublicKey);
    }

    /// <summary>One honest message from <paramref name="sender"/> to <paramref name="receiver"/>; returns the payload received.</summary>
    private static ReadOnlySpan<byte> Exchange(HandshakeState sender, HandshakeState receiver, ReadOnlySpan<byte> payload, Buffers buffers, int number)
    {
        var written = sender.WriteMessage(payload, buffers.Message);
        if (!receiver.TryReadMessage(buffers.Message.AsSpan(0, written), buffers.Payload, out var length))
        {
            throw Expected.Finding($"honest handshake message {number} with a {payload.Length}-byte payload was refused");
        }
        var received = buffers.Payload.AsSpan(0, length);
        if (!received.SequenceEqual(payload))
        {
            throw Expected.Finding($"handshake message {number} payload came out different ({length} bytes, {payload.Length} sent)");
        }
        return received;
    }

    private static bool Verify(ReadOnlySpan<byte> payload, ReadOnlySpan<byte> remoteStatic)
    {
        try
        {
            NoiseHandshake.VerifyPayload(payload, remoteStatic);
            return true;
        }
        catch (SecureMeshException e) when (Expected.IsProtocolError(e))
        {
            return false;
        }
    }

    private static HandshakeState Initiator() => new(true, default, FixedKeys.InitiatorStatic, FixedKeys.InitiatorEphemeral());

    private static HandshakeState Responder() => new(false, default, FixedKeys.ResponderStatic, FixedKeys.ResponderEphemeral());

    private static IReadOnlyList<byte[]> Seeds()
    {
        var buffers = new Buffers();
        try
        {
            using var initiator = Initiator();
            using var responder = Responder();
            var message1 = buffers.Message.AsSpan(0, initiator.WriteMessage(default, buffers.Message)).ToArray();
            responder.TryReadMessage(message1, buffers.Payload, out _);
            var message2 = buffers.Message.AsSpan(0, responder.WriteMessage(FixedPayloads.Responder, buffers.Message)).ToArray();
            return
            [
                [0, .. message1],
                [1, .. message2],
                [2, .. FixedPayloads.Responder],
                [3, .. FixedPayloads.Initiator],
                [2, .. FixedPayloads.WithExtensions],
            ];
        }
        finally
        {
            buffers.Dispose();
        }
    }

    /// <summary>Pooled message and payload buffers, each large enough for any handshake message.</summary>
    private readonly struct Buffers : IDisposable
    {
        public Buffers()
        {
            Message = ArrayPool<byte>.Shared.Rent(HandshakeState.MaxMessageLength);
            Payload = ArrayPool<byte>.Shared.Rent(HandshakeState.MaxMessageLength);
        }

        public byte[] Message { get; }

        public byte[] Payload { get; }

        public void Dispose()
        {
            ArrayPool<byte>.Shared.Return(Message);
            ArrayPool<byte>.Shared.Return(Payload);
        }
    }
}

/// <summary>Honest handshake payloads of the fixed identities, each signing its fixed static key.</summary>
internal static class FixedPayloads
{
    public static byte[] Initiator { get; } =
        NoiseHandshakePayload.Create(FixedKeys.InitiatorIdentity, FixedKeys.InitiatorStatic.PublicKey, [Core.Libp2p.Upgrader.YamuxProtocolId]).Encode();

    public static byte[] Responder { get; } =
        NoiseHandshakePayload.Create(FixedKeys.ResponderIdentity, FixedKeys.ResponderStatic.PublicKey, [Core.Libp2p.Upgrader.YamuxProtocolId]).Encode();

    /// <summary>The responder's payload with every extension field used: certificate hashes and several protocols.</summary>
    public static byte[] WithExtensions { get; } = new NoiseHandshakePayload
    {
        IdentityKey = Core.Identity.PeerId.EncodeProtobufPublicKey(FixedKeys.ResponderIdentity.PublicKey),
        IdentitySignature = FixedKeys.ResponderIdentity.Sign(NoiseHandshakePayload.SignedData(FixedKeys.ResponderStatic.PublicKey)),
        StreamMuxers = ["/yamux/1.0.0", "/mplex/6.7.0", "/other/1"],
        WebTransportCertHashes = [new byte[34], [0x12, 0x20, .. new byte[32]]],
    }.Encode();
}
