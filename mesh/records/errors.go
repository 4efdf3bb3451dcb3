package records

import "fmt"

func tableErr(op, table, key string, err error) error {
	return fmt.Errorf("%s %s/%s: %w", op, table, key, err)
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
