using SecureMesh.Core;
using SecureMesh.Core.Content;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Control;
using SecureMesh.Storage;

namespace SecureMesh.Cli;

/// <summary>
/// Parses what the user typed on the command line. A malformed value (a Peer ID, a content ID, an address, a range,
/// a name) is a usage error, exit 2, whatever layer finds it; a well-formed request that then fails exits 1.
/// </summary>
internal static class CliArgs
{
    public static PeerId Peer(string? text) => Check(() => PeerId.Parse(text));

    public static ContentId Content(string? text) => Check(() => ContentId.Parse(text));

    /// <summary>A content ID in its canonical text form (checked, trimmed).</summary>
    public static string ContentText(string? text)
    {
        var trimmed = (text ?? string.Empty).Trim();
        Check(() =>
        {
            ContentIdFormat.Validate(trimmed);
            return true;
        });
        return trimmed;
    }

    public static CidrRange Cidr(string? text) => Check(() => CidrRange.Parse(text));

    public static string? Name(string? text) => Check(() => NodeControl.ValidateName(text));

    public static string? Reason(string? text) => Check(() => NodeControl.ValidateReason(text));

    /// <summary>Runs <paramref name="parse"/>; its InvalidInput error becomes a usage error with the same message.</summary>
    public static T Check<T>(Func<T> parse)
    {
        try
        {
            return parse();
        }
        catch (SecureMeshException e) when (e.Kind == SecureMeshErrorKind.InvalidInput && !e.Data.Contains("usage"))
        {
            throw CliApp.UsageError(e.Message);
        }
    }
}
