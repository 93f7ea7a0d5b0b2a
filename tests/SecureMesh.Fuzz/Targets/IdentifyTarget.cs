using SecureMesh.Core;
using SecureMesh.Core.Libp2p.Identify;

namespace SecureMesh.Fuzz.Targets;

/// <summary>
/// The identify message parser. What it accepts must respect the caps and survive our own encoding with the same fields.
/// </summary>
internal static class IdentifyTarget
{
    public static FuzzTarget Target { get; } = new("identify", "IdentifyMessage.Decode: the libp2p identify protobuf", Run, Seeds);

    public static bool Run(ReadOnlySpan<byte> data)
    {
        IdentifyMessage message;
        try
        {
            message = IdentifyMessage.Decode(data);
        }
        catch (SecureMeshException e) when (Expected.IsProtocolError(e))
        {
            return false;
        }
        if (message.ListenAddrs.Count > IdentifyMessage.MaxListenAddrs || message.Protocols.Count > IdentifyMessage.MaxProtocols
            || message.ListenAddrs.Any(a => a.Length > IdentifyMessage.MaxAddrLength))
        {
            throw Expected.Finding("the caps were not applied");
        }
        var again = IdentifyMessage.Decode(message.Encode());
        if (again.ProtocolVersion != message.ProtocolVersion || again.AgentVersion != message.AgentVersion
            || !Same(again.PublicKey, message.PublicKey) || !Same(again.ObservedAddr, message.ObservedAddr)
            || !Same(again.SignedPeerRecord, message.SignedPeerRecord)
            || !again.Protocols.SequenceEqual(message.Protocols, StringComparer.Ordinal)
            || again.ListenAddrs.Count != message.ListenAddrs.Count
            || !again.ListenAddrs.Zip(message.ListenAddrs).All(p => p.First.AsSpan().SequenceEqual(p.Second)))
        {
            throw Expected.Finding("a decoded identify message re-encodes to different fields");
        }
        return true;
    }

    private static bool Same(byte[]? a, byte[]? b) => a is null ? b is null : b is not null && a.AsSpan().SequenceEqual(b);

    private static IReadOnlyList<byte[]> Seeds() =>
    [
        new IdentifyMessage
        {
            ProtocolVersion = "ipfs/0.1.0",
            AgentVersion = "js-libp2p/3.3.11 node/20.20.2",
            PublicKey = [0x08, 0x01, 0x12, 0x20, .. Enumerable.Range(0, 32).Select(i => (byte)i)],
            ListenAddrs = [[0x04, 127, 0, 0, 1, 0x06, 0x12, 0x8B]],
            ObservedAddr = [0x04, 10, 0, 0, 1, 0x06, 0x04, 0xD2],
            Protocols = ["/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"],
        }.Encode(),
        new IdentifyMessage { SignedPeerRecord = [1, 2, 3], Protocols = ["/a"] }.Encode(),
    ];
}
