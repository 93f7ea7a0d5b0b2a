using SecureMesh.Core;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p.HolePunch;
using SecureMesh.Core.Libp2p.Relay;

namespace SecureMesh.Fuzz.Targets;

/// <summary>
/// The circuit relay v2 (hop, stop) and DCUtR message parsers, fed the same bytes: each may only refuse with its
/// protocol error, keeps its caps, and what it accepts re-encodes to a message that decodes to the same fields.
/// </summary>
internal static class RelayTarget
{
    public static FuzzTarget Target { get; } = new("relay", "HopMessage/StopMessage/HolePunchMessage.Decode: circuit relay v2 and DCUtR protobufs", Run, Seeds);

    public static bool Run(ReadOnlySpan<byte> data)
    {
        var accepted = false;
        try
        {
            var hop = HopMessage.Decode(data);
            var again = HopMessage.Decode(hop.Encode());
            if (again.Type != hop.Type || again.Status != hop.Status || again.Peer?.Id != hop.Peer?.Id
                || again.Reservation?.Expire != hop.Reservation?.Expire || (again.Limit ?? new RelayLimit(0, 0)) != (hop.Limit ?? new RelayLimit(0, 0)))
            {
                throw Expected.Finding("a decoded hop message re-encodes to different fields");
            }
            accepted = true;
        }
        catch (SecureMeshException e) when (Expected.IsProtocolError(e))
        {
        }
        try
        {
            var stop = StopMessage.Decode(data);
            var again = StopMessage.Decode(stop.Encode());
            if (again.Type != stop.Type || again.Status != stop.Status || again.Peer?.Id != stop.Peer?.Id)
            {
                throw Expected.Finding("a decoded stop message re-encodes to different fields");
            }
            accepted = true;
        }
        catch (SecureMeshException e) when (Expected.IsProtocolError(e))
        {
        }
        try
        {
            var punch = HolePunchMessage.Decode(data);
            if (punch.ObservedAddrs.Count > HolePunchMessage.MaxAddrs)
            {
                throw Expected.Finding("the address cap was not applied");
            }
            var again = HolePunchMessage.Decode(punch.Encode());
            if (again.Type != punch.Type || again.ObservedAddrs.Count != punch.ObservedAddrs.Count)
            {
                throw Expected.Finding("a decoded hole punch message re-encodes to different fields");
            }
            accepted = true;
        }
        catch (SecureMeshException e) when (Expected.IsProtocolError(e))
        {
        }
        return accepted;
    }

    private static IReadOnlyList<byte[]> Seeds()
    {
        var peer = PeerId.FromPublicKey([.. Enumerable.Range(1, 32).Select(i => (byte)i)]);
        byte[] addr = [0x04, 10, 0, 0, 1, 0x06, 0x12, 0x8B];
        return
        [
            new HopMessage(HopType.Reserve).Encode(),
            new HopMessage(HopType.Connect) { Peer = new RelayPeer(peer, [addr]) }.Encode(),
            new HopMessage(HopType.Status)
            {
                Status = RelayStatus.Ok,
                Reservation = new RelayReservation(1_900_000_000, [addr], [1, 2, 3]),
                Limit = new RelayLimit(120, 1 << 17),
            }.Encode(),
            new StopMessage(StopType.Connect) { Peer = new RelayPeer(peer), Limit = new RelayLimit(60, 0) }.Encode(),
            new HolePunchMessage(HolePunchType.Connect, [addr, addr]).Encode(),
        ];
    }
}
