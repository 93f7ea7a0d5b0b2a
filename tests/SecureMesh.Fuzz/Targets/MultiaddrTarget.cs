using SecureMesh.Core;
using SecureMesh.Core.Addressing;

namespace SecureMesh.Fuzz.Targets;

/// <summary>
/// The binary multiaddr parser (what identify will hand us from peers). What parses must re-encode to exactly the same
/// bytes (one encoding per address: minimal varints, fixed sizes), its text form must parse back to the same address,
/// and the TryFromBytes and FromBytes forms must agree.
/// </summary>
internal static class MultiaddrTarget
{
    public static FuzzTarget Target { get; } = new("multiaddr", "Multiaddr.FromBytes: binary multiaddrs", Run, Seeds);

    public static bool Run(ReadOnlySpan<byte> data)
    {
        var accepted = Multiaddr.TryFromBytes(data, out var parsed, out var error);
        Multiaddr? thrown;
        try
        {
            thrown = Multiaddr.FromBytes(data);
        }
        catch (SecureMeshException e) when (Expected.IsProtocolError(e))
        {
            thrown = null;
        }
        if (accepted != thrown is not null)
        {
            throw Expected.Finding("TryFromBytes and FromBytes disagree");
        }
        if (!accepted || parsed is null)
        {
            if (string.IsNullOrEmpty(error))
            {
                throw Expected.Finding("refused without a reason");
            }
            return false;
        }
        if (!parsed.Bytes.SequenceEqual(data))
        {
            throw Expected.Finding("a parsed multiaddr re-encodes to different bytes");
        }
        if (!Multiaddr.TryParse(parsed.ToString(), out var again, out var why) || !again.Equals(parsed))
        {
            throw Expected.Finding($"the text form '{parsed}' does not parse back to the same address ({why})");
        }
        return true;
    }

    private static IReadOnlyList<byte[]> Seeds() =>
    [
        Convert.FromHexString("04c000022a0601bb"),
        Convert.FromHexString("2920010db800000000000000000000000706128b"),
        Convert.FromHexString("35096e61732e6c6f63616c06128b"),
        Convert.FromHexString("36096c6f63616c686f7374060050"),
        Convert.FromHexString("370b6578616d706c652e636f6d06ffff"),
        Convert.FromHexString("047f000001060fa1a5032600240801122010c9ebd50d17911b0c93b4957fc83fa55d1701afa9d6263eeec18fdec6ef211c"),
        Convert.FromHexString("04c6336401060fa1a5032600240801122010c9ebd50d17911b0c93b4957fc83fa55d1701afa9d6263eeec18fdec6ef211ca202a5032600240801122010c9ebd50d17911b0c93b4957fc83fa55d1701afa9d6263eeec18fdec6ef211c"),
    ];
}
