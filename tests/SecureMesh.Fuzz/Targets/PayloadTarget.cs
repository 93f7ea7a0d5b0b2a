using SecureMesh.Core;
using SecureMesh.Core.Channel;
using SecureMesh.Core.Noise;

namespace SecureMesh.Fuzz.Targets;

/// <summary>
/// The libp2p <c>NoiseHandshakePayload</c> protobuf, parsed directly (no Noise around it, so it runs fast), then checked
/// the way the channel checks a peer's payload: identity key form and its signature over the fixed responder static key.
/// </summary>
internal static class PayloadTarget
{
    public static FuzzTarget Target { get; } = new("payload", "NoiseHandshakePayload protobuf parser and the identity check on it", Run, Seeds);

    public static bool Run(ReadOnlySpan<byte> data)
    {
        NoiseHandshakePayload payload;
        try
        {
            payload = NoiseHandshakePayload.Decode(data);
        }
        catch (SecureMeshException e) when (Expected.IsProtocolError(e))
        {
            return false;
        }
        if (payload.StreamMuxers.Count > NoiseHandshakePayload.MaxProtocols || payload.WebTransportCertHashes.Count > NoiseHandshakePayload.MaxCertHashes)
        {
            throw Expected.Finding($"the caps were not applied: {payload.StreamMuxers.Count} protocols, {payload.WebTransportCertHashes.Count} hashes");
        }
        // What was understood must survive our own encoding unchanged.
        var again = NoiseHandshakePayload.Decode(payload.Encode());
        if (!again.IdentityKey.AsSpan().SequenceEqual(payload.IdentityKey)
            || !again.IdentitySignature.AsSpan().SequenceEqual(payload.IdentitySignature)
            || !again.StreamMuxers.SequenceEqual(payload.StreamMuxers, StringComparer.Ordinal)
            || again.WebTransportCertHashes.Count != payload.WebTransportCertHashes.Count)
        {
            throw Expected.Finding("a decoded payload re-encodes to different fields");
        }
        try
        {
            NoiseHandshake.VerifyPayload(data, FixedKeys.ResponderStatic.PublicKey);
            return true;
        }
        catch (SecureMeshException e) when (Expected.IsProtocolError(e))
        {
            return false;
        }
    }

    private static IReadOnlyList<byte[]> Seeds() =>
    [
        FixedPayloads.Responder,
        FixedPayloads.WithExtensions,
        // An unknown varint field, fixed64 and fixed32 fields, and an empty extensions message: skipped or merged.
        [0x28, 0x96, 0x01, 0x31, 1, 2, 3, 4, 5, 6, 7, 8, 0x3D, 1, 2, 3, 4, 0x22, 0x00, .. FixedPayloads.Responder],
    ];
}
